import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { directoryYaml, sspHeaders, startGateway, type RunningGateway } from '../helpers/test-kit';
import {
  gatewayRequest,
  parseRequests,
  rawClient,
  rawProvider,
  requestLines,
  startEngine,
  statusLines,
  type EngineUnderTest,
  type RawProvider,
} from '../helpers/engine-kit';

/**
 * Request smuggling through `Connection`. A header named in Connection
 * is hop-by-hop and dropped, but framing (Content-Length, Transfer-Encoding) and Host are
 * never dropped that way: a body leaves with the framing it arrived with, so a body can
 * never become a second request on the provider connection, and a provider's Connection
 * can never change how its response is framed for the consumer.
 */

const SMUGGLED = 'GET /A20047/fhir/Patient/9000000009 HTTP/1.1\r\nHost: x\r\nSsp-From: 999\r\n\r\n';

/** A raw provider that answers every request it reads (framing respected) with `200 OK` and the path as body. */
function answering(): (s: Socket, all: string) => void {
  const answered = new WeakMap<Socket, number>();
  return (s, all) => {
    const requests = parseRequests(all);
    for (let n = answered.get(s) ?? 0; n < requests.length; n++) {
      answered.set(s, n + 1);
      const body = `answer:${requests[n].line.split(' ')[1]}`;
      if (s.writable) s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    }
  };
}

describe('engine alone: framing survives any Connection header', () => {
  let provider: RawProvider;
  let engine: EngineUnderTest;
  beforeEach(async () => {
    provider = await rawProvider(answering());
    engine = await startEngine(provider.port, { maxSockets: 1 });
  });
  afterEach(async () => {
    await engine.close();
    await provider.close();
  });

  const variants: Array<[string, string]> = [
    ['Connection: Content-Length', 'Connection: Content-Length\r\n'],
    ['lower case', 'Connection: content-length\r\n'],
    ['upper case and spaces', 'Connection:    CONTENT-LENGTH   \r\n'],
    ['in a list', 'Connection: keep-alive, Content-Length, X-Other\r\n'],
    ['repeated Connection lines', 'Connection: keep-alive\r\nConnection: Content-Length\r\n'],
    ['with Host and Transfer-Encoding too', 'Connection: Host, Transfer-Encoding,Content-Length\r\n'],
  ];

  test.each(variants)("the issue's attack (%s): one request reaches the provider, with its Content-Length and body", async (_name, connection) => {
    const c = await rawClient(engine.port);
    try {
      c.write(`GET /A20047/fhir/metadata HTTP/1.1\r\nHost: gw\r\n${connection}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
      const text = await c.until((t) => statusLines(t).length >= 1 && t.includes('answer:'));
      expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
      expect(text).toContain('answer:/A20047/fhir/metadata');
      // Keep-alive reuse afterwards: the next request gets its own answer, not a smuggled one.
      c.write('GET /A20047/fhir/second HTTP/1.1\r\nHost: gw\r\n\r\n');
      const after = await c.until((t) => t.includes('answer:/A20047/fhir/second'));
      expect(after).not.toContain('Patient');
      expect(requestLines(provider.received)).toEqual(['GET /A20047/fhir/metadata HTTP/1.1', 'GET /A20047/fhir/second HTTP/1.1']);
      expect(provider.received.join('')).toMatch(new RegExp(`\\r\\ncontent-length: ${SMUGGLED.length}\\r\\n`, 'i'));
      expect(parseRequests(provider.received.join(''))[0].body).toBe(SMUGGLED);
      expect(provider.received.join('')).toMatch(/\r\nhost: 127\.0\.0\.1:\d+\r\n/i);
    } finally {
      c.close();
    }
  });

  test('a chunked body named in Connection: Transfer-Encoding stays chunked', async () => {
    const c = await rawClient(engine.port);
    try {
      const hex = SMUGGLED.length.toString(16);
      c.write(
        `POST /A20047/fhir/x HTTP/1.1\r\nHost: gw\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n${hex}\r\n${SMUGGLED}\r\n0\r\n\r\n`,
      );
      const text = await c.until((t) => t.includes('answer:'));
      expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
      expect(requestLines(provider.received)).toEqual(['POST /A20047/fhir/x HTTP/1.1']);
      expect(provider.received[0]).toMatch(/\r\ntransfer-encoding: chunked\r\n/i);
    } finally {
      c.close();
    }
  });

  test('HEAD with a body keeps its length', async () => {
    const c = await rawClient(engine.port);
    try {
      c.write(`HEAD /A20047/fhir/metadata HTTP/1.1\r\nHost: gw\r\nConnection: Content-Length\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
      const text = await c.until((t) => statusLines(t).length >= 1);
      expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
      await new Promise((r) => setTimeout(r, 100));
      expect(requestLines(provider.received)).toEqual(['HEAD /A20047/fhir/metadata HTTP/1.1']);
    } finally {
      c.close();
    }
  });
});

describe("engine alone: a provider's Connection cannot desynchronise the consumer", () => {
  test.each([
    ['Content-Length', 'HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello'],
    ['Transfer-Encoding', 'HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ])('Connection: %s in a response: the consumer reads one response, then its next one', async (_name, response) => {
    let n = 0;
    const provider = await rawProvider((s, all) => {
      const count = (all.match(/\r\n\r\n/g) ?? []).length;
      while (n < count) {
        n++;
        s.write(n === 1 ? response : 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond');
      }
    });
    const engine = await startEngine(provider.port, { maxSockets: 1 });
    const c = await rawClient(engine.port);
    try {
      c.write('GET /a HTTP/1.1\r\nHost: gw\r\n\r\n');
      const first = await c.until((t) => t.includes('hello') && (/Content-Length: 5\r\n/.test(t) || t.includes('0\r\n\r\n')));
      expect(statusLines(first)).toHaveLength(1);
      // The provider's own framing reaches the consumer: its Content-Length, or chunks.
      if (_name === 'Content-Length') expect(first).toMatch(/\r\nContent-Length: 5\r\n(?:[^\r]+\r\n)*\r\nhello$/);
      else expect(first).toMatch(/\r\nTransfer-Encoding: chunked\r\n(?:[^\r]+\r\n)*\r\n5\r\nhello\r\n0\r\n\r\n$/i);
      c.write('GET /b HTTP/1.1\r\nHost: gw\r\n\r\n');
      const both = await c.until((t) => t.endsWith('second'));
      expect(statusLines(both)).toHaveLength(2);
      expect(both).toMatch(/\r\nContent-Length: 6\r\n(?:[^\r]+\r\n)*\r\nsecond$/);
    } finally {
      c.close();
      await engine.close();
      await provider.close();
    }
  });
});

describe('through the gateway: two consumers, a delayed provider', () => {
  let provider: Server;
  let port: number;
  let seen: string[];
  let gw: RunningGateway;
  const root = () => `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir`;

  beforeAll(async () => {
    seen = [];
    // A real keep-alive provider: it answers a smuggled Patient request slowly, the way
    // a delayed request between two consumers' requests lined up the leak in the issue.
    provider = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.url} from=${req.headers['ssp-from'] ?? ''}`);
      req.resume();
      req.on('end', () => {
        const body = req.url!.includes('Patient') ? 'PATIENT-9000000009' : `own:${req.url}`;
        setTimeout(() => res.end(body), req.url!.includes('Patient') ? 150 : 0);
      });
    });
    await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
    port = (provider.address() as AddressInfo).port;
    gw = await startGateway(directoryYaml({ metadata: root() }), { UPSTREAM_MAX_SOCKETS: '1' });
  });
  afterAll(async () => {
    await gw.stop();
    provider.closeAllConnections();
    await new Promise((r) => provider.close(r));
  });

  test("the attacker's body never becomes a request; the victim gets only its own response", async () => {
    const attackerTrace = randomUUID();
    const attacker = await rawClient(gw.proxyPort);
    const victim = await rawClient(gw.proxyPort);
    try {
      attacker.write(
        gatewayRequest(
          `${root()}/metadata`,
          sspHeaders({ 'Ssp-TraceID': attackerTrace }),
          `Connection: Content-Length\r\nContent-Length: ${SMUGGLED.length}\r\n`,
        ) + SMUGGLED,
      );
      const first = await attacker.until((t) => statusLines(t).length >= 1 && /\r\n\r\n/.test(t), 3000);
      // With the handler's refusal in front, the attacker gets a 400; without it, its own metadata answer.
      expect(first).not.toContain('PATIENT');
      await new Promise((r) => setTimeout(r, 20));
      victim.write(gatewayRequest(`${root()}/victim`, sspHeaders({ 'Ssp-TraceID': randomUUID() })));
      const v = await victim.until((t) => t.includes('own:') || t.includes('PATIENT'), 3000);
      expect(v).not.toContain('PATIENT');
      expect(v).toContain('own:/A20047/STU3/1/gpconnect/fhir/victim');
      if (!attacker.closed) {
        attacker.write(gatewayRequest(`${root()}/next`, sspHeaders({ 'Ssp-TraceID': randomUUID() })));
        const next = await attacker.until((t) => t.includes('own:/A20047/STU3/1/gpconnect/fhir/next') || t.includes('PATIENT'), 3000);
        expect(next).not.toContain('PATIENT');
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.filter((s) => s.includes('Patient'))).toEqual([]);
      expect(seen.some((s) => s.includes('from=999'))).toBe(false);
    } finally {
      attacker.close();
      victim.close();
    }
  });
});

import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { TestCa } from '../helpers/pki';
import { gzipSync } from 'node:zlib';
import { directoryYaml, eventually, send, sspHeaders, startGateway, type RunningGateway } from '../helpers/test-kit';
import { gatewayRequest, rawClient, rawProvider, requestLines, startEngine, statusLines, transactionLines, type RawProvider } from '../helpers/engine-kit';

/**
 * The provider side: whatever a provider sends, the process
 * lives, the consumer gets the provider's response byte for byte or a 502, the audit
 * record says what the consumer got, and a provider socket that misbehaved is never reused.
 */

const root = (port: number) => `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir`;

/** Counts complete request heads a raw provider got on one connection. */
const heads = (all: string) => (all.match(/\r\n\r\n/g) ?? []).length;

/** Calls `answer(requestLine, n)` once for every new request head on each connection; it writes the response. */
function perRequest(answer: (s: Socket, line: string, n: number, connection: number) => void): (s: Socket, all: string, index: number) => void {
  const done = new WeakMap<Socket, number>();
  return (s, all, index) => {
    const count = heads(all);
    let n = done.get(s) ?? 0;
    const lines = all.split('\r\n\r\n');
    while (n < count) {
      // A body's own blank line is not a request: answer only heads that start with a request line.
      const line = /(?:^|\n)([A-Z]+ \/\S* HTTP\/1\.[01])(?:\r|$)/.exec(lines[n])?.[1];
      n++;
      done.set(s, n);
      if (line !== undefined) answer(s, line, n, index);
    }
  };
}

/** One request on a fresh consumer connection; resolves with everything read until close or `ms`. */
async function exchange(gw: RunningGateway, target: string, traceId = randomUUID(), extra = '', ms = 3000): Promise<string> {
  const c = await rawClient(gw.proxyPort);
  c.write(gatewayRequest(target, sspHeaders({ 'Ssp-TraceID': traceId }), `${extra}Connection: close\r\n`));
  const text = await c.until(() => false, ms);
  c.close();
  return text;
}

async function recordFor(gw: RunningGateway, traceId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const rows = transactionLines(gw, traceId);
    if (rows.length > 0 || Date.now() > deadline) {
      expect(rows).toHaveLength(1);
      return rows[0];
    }
    await new Promise((r) => setTimeout(r, 30));
  }
}

describe('1xx other than 100 is a provider failure (item 4)', () => {
  let provider: RawProvider;
  let gw: RunningGateway;
  let reply: string;
  beforeAll(async () => {
    provider = await rawProvider(perRequest((s) => s.write(reply)));
    gw = await startGateway(directoryYaml({ metadata: root(provider.port) }), { UPSTREAM_TIMEOUT_MS: '2000' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });

  test.each([
    ['101 that nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nConnection: keep-alive\r\n\r\n'],
    ['101 with Upgrade headers', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['103 Early Hints', 'HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n'],
    ['102 Processing', 'HTTP/1.1 102 Processing\r\n\r\n'],
  ])('%s: 502, connection closed, audited UNEXPECTED_1XX, provider socket never reused', async (_name, response) => {
    reply = response;
    const trace = randomUUID();
    const started = Date.now();
    const text = await exchange(gw, `${root(provider.port)}/metadata`, trace);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(statusLines(text)).toEqual(['HTTP/1.1 502 Bad Gateway']);
    expect(text).toContain('ERROR_COMMUNICATING_TO_ENDPOINT');
    const row = await recordFor(gw, trace);
    expect(row).toMatchObject({ status: 502, outcome: 'upstream_error', error_code: 'ERROR_COMMUNICATING_TO_ENDPOINT', failure_reason: 'UNEXPECTED_1XX' });
    // The provider connection that sent the 1xx is closed, never reused.
    const used = provider.connections[provider.received.findIndex((r) => r.includes(`\r\nSsp-TraceID: ${trace}\r\n`))];
    await eventually(() => used.destroyed, 1000, 'the provider socket to be closed');
    reply = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const next = await exchange(gw, `${root(provider.port)}/metadata`);
    expect(next).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  test('100 Continue that nobody asked for is skipped; the final response is relayed', async () => {
    reply = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const text = await exchange(gw, `${root(provider.port)}/metadata`);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
  });
});

describe('101 to a consumer that asked to upgrade (engine alone)', () => {
  test('502 at once, not a hang; the provider socket is closed', async () => {
    const provider = await rawProvider(perRequest((s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')));
    const engine = await startEngine(provider.port);
    const c = await rawClient(engine.port);
    try {
      c.write('GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      const text = await c.until((t) => statusLines(t).length > 0 && t.includes('}'), 2000);
      expect(statusLines(text)).toEqual(['HTTP/1.1 502 Bad Gateway']);
      expect(text).toMatch(/\r\nConnection: close\r\n/i);
      expect(engine.done[0]).toMatchObject({ outcome: 'upstream_error', status: 502, failureReason: 'UNEXPECTED_1XX' });
      await new Promise((r) => setTimeout(r, 50));
      expect(provider.sockets.size).toBe(0);
    } finally {
      c.close();
      await engine.close();
      await provider.close();
    }
  });
});

describe('one bad byte from a provider (item 9)', () => {
  let provider: RawProvider;
  let gw: RunningGateway;
  beforeAll(async () => {
    // The request path says what to send: /fuzz/<where>/<byte>.
    provider = await rawProvider(
      perRequest((s, line) => {
        const m = /\/fuzz\/(\w+)\/(\d+)/.exec(line);
        if (!m) return void s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        if (m[1] === 'status') return void s.end(`HTTP/1.1 ${m[2]} Status\r\nContent-Length: 2\r\n\r\nok`);
        const b = String.fromCharCode(Number(m[2]));
        const head =
          m[1] === 'reason'
            ? `HTTP/1.1 200 O${b}K\r\nX-Fuzz: v\r\n`
            : m[1] === 'name'
              ? `HTTP/1.1 200 OK\r\nX-F${b}z: v\r\n`
              : `HTTP/1.1 200 OK\r\nX-Fuzz: v${b}v\r\n`;
        s.end(Buffer.from(`${head}Content-Length: 2\r\n\r\nok`, 'latin1'));
      }),
    );
    gw = await startGateway(directoryYaml({ metadata: root(provider.port) }), { UPSTREAM_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });

  test("the issue's reason phrase `O\\x01K`: 502, audited, and the gateway lives", async () => {
    const trace = randomUUID();
    const text = await exchange(gw, `${root(provider.port)}/fuzz/reason/1`, trace);
    expect(statusLines(text)).toEqual(['HTTP/1.1 502 Bad Gateway']);
    const row = await recordFor(gw, trace);
    expect(row).toMatchObject({ status: 502, outcome: 'upstream_error', failure_reason: 'INVALID_RESPONSE_HEAD' });
    const health = await send(`http://127.0.0.1:${gw.adminPort}/healthz`);
    expect(health.status).toBe(200);
  });

  /** The provider's line as the consumer should see it, when relayed: `name: value` with the OWS normalised. */
  function canonical(line: string): string {
    const colon = line.indexOf(':');
    return `${line.slice(0, colon)}: ${line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')}`;
  }

  test.each(['reason', 'name', 'value'])(
    'every byte 0..255 in the %s: the byte-exact response or a 502',
    async (where) => {
      const outcomes = { relayed: 0, refused: 0 };
      for (let b = 0; b < 256; b++) {
        const text = await exchange(gw, `${root(provider.port)}/fuzz/${where}/${b}`, randomUUID(), '', 2000);
        const ch = String.fromCharCode(b);
        if (text.startsWith('HTTP/1.1 502 Bad Gateway\r\n')) {
          outcomes.refused++;
          continue;
        }
        const [head, body] = text.split('\r\n\r\n');
        const lines = head.split('\r\n');
        if (where === 'reason') expect([b, lines[0]]).toEqual([b, `HTTP/1.1 200 O${ch}K`]);
        else expect([b, lines[0]]).toEqual([b, 'HTTP/1.1 200 OK']);
        const want = where === 'name' ? canonical(`X-F${ch}z: v`) : where === 'value' ? `X-Fuzz: v${ch}v` : 'X-Fuzz: v';
        expect([b, lines[1]]).toEqual([b, want]);
        expect([b, body]).toEqual([b, 'ok']);
        outcomes.relayed++;
      }
      expect(outcomes.relayed + outcomes.refused).toBe(256);
      expect(outcomes.relayed).toBeGreaterThan(60);
      const health = await send(`http://127.0.0.1:${gw.adminPort}/healthz`);
      expect(health.status).toBe(200);
    },
    120_000,
  );

  test('every status code 000..999: relayed as sent, or a 502 (every 1xx and anything below 100)', async () => {
    for (let code = 0; code < 1000; code++) {
      const digits = String(code).padStart(3, '0');
      const text = await exchange(gw, `${root(provider.port)}/fuzz/status/${digits}`, randomUUID(), '', 2000);
      const line = text.slice(0, text.indexOf('\r\n'));
      if (code < 200) expect([code, line]).toEqual([code, 'HTTP/1.1 502 Bad Gateway']);
      else expect([code, line]).toEqual([code, `HTTP/1.1 ${digits} Status`]);
    }
    expect((await send(`http://127.0.0.1:${gw.adminPort}/healthz`)).status).toBe(200);
  }, 120_000);
});

describe('framing the provider chose (item 11)', () => {
  let provider: RawProvider;
  let gw: RunningGateway;
  let reply: (s: Socket, line: string) => void;
  beforeAll(async () => {
    provider = await rawProvider(perRequest((s, line) => reply(s, line)));
    gw = await startGateway(directoryYaml({ metadata: root(provider.port) }), { UPSTREAM_TIMEOUT_MS: '2000' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });

  test('Transfer-Encoding: gzip, chunked reaches the consumer with its coding named', async () => {
    const zipped = gzipSync(Buffer.from('{"resourceType":"Bundle"}'));
    reply = (s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n');
      s.end(Buffer.concat([Buffer.from(`${zipped.length.toString(16)}\r\n`), zipped, Buffer.from('\r\n0\r\n\r\n')]));
    };
    const text = await exchange(gw, `${root(provider.port)}/metadata`);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text).toMatch(/\r\nTransfer-Encoding: gzip, chunked\r\n/);
    const body = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1');
    expect(body.equals(Buffer.concat([Buffer.from(`${zipped.length.toString(16)}\r\n`), zipped, Buffer.from('\r\n0\r\n\r\n')]))).toBe(true);
  });

  test('a transfer coding for an HTTP/1.0 consumer, which cannot be told of it: 502 UNSUPPORTED_TRANSFER_CODING', async () => {
    reply = (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nxx\r\n0\r\n\r\n');
    const trace = randomUUID();
    const c = await rawClient(gw.proxyPort);
    c.write(gatewayRequest(`${root(provider.port)}/metadata`, sspHeaders({ 'Ssp-TraceID': trace })).replace(' HTTP/1.1\r\n', ' HTTP/1.0\r\n'));
    const text = await c.until(() => false, 1500);
    c.close();
    expect(text).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(await recordFor(gw, trace)).toMatchObject({ status: 502, failure_reason: 'UNSUPPORTED_TRANSFER_CODING' });
  });

  test("a consumer's Transfer-Encoding reaches the provider as plain `chunked`, whatever its case", async () => {
    reply = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const before = provider.received.length;
    const c = await rawClient(gw.proxyPort);
    c.write(
      gatewayRequest(`${root(provider.port)}/metadata`, sspHeaders(), 'Transfer-Encoding: Chunked\r\nConnection: close\r\n', 'POST') + '3\r\nabc\r\n0\r\n\r\n',
    );
    const text = await c.until(() => false, 1500);
    c.close();
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    const got = provider.received.slice(before).join('');
    expect(got).toMatch(/\r\nTransfer-Encoding: chunked\r\n/);
    expect(got).toContain('3\r\nabc\r\n0\r\n\r\n');
  });

  /** The status the consumer's bytes show (0 for none) and the body bytes after the head. */
  function received(text: string): { status: number; bodyBytes: number } {
    const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
    const at = text.indexOf('\r\n\r\n');
    return { status: m ? Number(m[1]) : 0, bodyBytes: at === -1 ? 0 : text.length - at - 4 };
  }

  test.each([
    ['HEAD answered with a body', 'HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody'],
    ['204 with a body', 'GET', 'HTTP/1.1 204 No Content\r\n\r\nbody'],
    ['304 with a body', 'GET', 'HTTP/1.1 304 Not Modified\r\n\r\nbody'],
    ['junk after a complete response', 'GET', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK'],
  ])("%s: the record's status is the one the consumer got", async (_name, method, response) => {
    reply = (s) => s.write(response);
    const trace = randomUUID();
    const c = await rawClient(gw.proxyPort);
    c.write(gatewayRequest(`${root(provider.port)}/metadata`, sspHeaders({ 'Ssp-TraceID': trace }), 'Connection: close\r\n', method));
    const text = await c.until(() => false, 1500);
    c.close();
    const got = received(text);
    expect(got.status).not.toBe(0);
    const row = await recordFor(gw, trace);
    expect(row.status).toBe(got.status);
    if (got.status === 502) expect(row.outcome).toBe('upstream_error');
    else expect(row.outcome).toBe('forwarded');
  });

  test('Content-Length: 50 with 5 bytes and a close: the record holds what the consumer got', async () => {
    reply = (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello');
    const trace = randomUUID();
    const text = await exchange(gw, `${root(provider.port)}/metadata`, trace);
    const got = received(text);
    const row = await recordFor(gw, trace);
    expect(row.outcome).toBe('upstream_error');
    expect(got.status === 0 ? 0 : got.status).toBe(row.status === 0 ? 0 : row.status);
    expect(row.response_bytes).toBe(got.bodyBytes);
    expect(got.bodyBytes).toBeLessThan(50);
  });

  test.each([
    ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n', '6\r\nsecond\r\n0\r\n\r\n'],
    ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nfirst', 'second'],
  ])('%s: headers and the first chunk reach the consumer at once, not with the next chunk', async (_name, first, rest) => {
    reply = (s) => {
      s.write(first);
      setTimeout(() => s.writable && s.write(rest), 800);
    };
    const c = await rawClient(gw.proxyPort);
    const started = Date.now();
    c.write(gatewayRequest(`${root(provider.port)}/metadata`, sspHeaders(), 'Connection: close\r\n'));
    const early = await c.until((t) => t.includes('first'), 2000);
    const firstAt = Date.now() - started;
    const all = await c.until((t) => t.includes('second') && (t.endsWith('0\r\n\r\n') || t.endsWith('firstsecond')), 3000);
    c.close();
    expect(early).toContain('first');
    expect(firstAt).toBeLessThan(500);
    expect(all).toContain('second');
  });

  test('an unrequested response on an idle pooled socket: that socket is destroyed, never reused', async () => {
    reply = (s, line) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${line.length}\r\n\r\n${line}`);
      if (line.includes('/first')) setTimeout(() => s.writable && s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL'), 50);
    };
    const a = await send(gw.url(`${root(provider.port)}/first`), { headers: sspHeaders() });
    expect(a.body.toString()).toContain('/first');
    const spoke = provider.received.findIndex((r) => r.includes('/first'));
    // The socket that spoke out of turn is closed by the gateway; the next request goes elsewhere.
    await eventually(() => provider.connections[spoke].destroyed, 1000, 'the out-of-step socket to be closed');
    const b = await send(gw.url(`${root(provider.port)}/second`), { headers: sspHeaders() });
    expect(b.body.toString()).toContain('/second');
    expect(b.body.toString()).not.toContain('EVIL');
    expect(provider.received.findIndex((r) => r.includes('/second'))).not.toBe(spoke);
  });
});

describe('stale keep-alive sockets (item 11)', () => {
  test('a pooled socket that fails before any response byte: a GET is retried once on a new connection, one record', async () => {
    // Every connection answers its first request and drops the second unanswered: what a
    // provider closing an idle socket just as the gateway reuses it looks like.
    const provider = await rawProvider(
      perRequest((s, line, n) => (n === 1 ? s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${line.length}\r\n\r\n${line}`) : s.destroy())),
    );
    const gw = await startGateway(directoryYaml({ metadata: root(provider.port) }), { UPSTREAM_MAX_SOCKETS: '1', UPSTREAM_IDLE_MS: '10000' });
    try {
      const first = await send(gw.url(`${root(provider.port)}/one`), { headers: sspHeaders() });
      expect(first.status).toBe(200);
      const trace = randomUUID();
      const second = await send(gw.url(`${root(provider.port)}/two`), { headers: sspHeaders({ 'Ssp-TraceID': trace }) });
      expect(second.status).toBe(200);
      expect(second.body.toString()).toContain('/two');
      const row = await recordFor(gw, trace);
      expect(row).toMatchObject({ status: 200, outcome: 'forwarded' });
      expect(requestLines(provider.received).filter((l) => l.includes('/two'))).toHaveLength(2);
      // A request with a body is not retried: its body may have reached the provider.
      expect((await send(gw.url(`${root(provider.port)}/four`), { headers: sspHeaders() })).status).toBe(200);
      const posted = await send(gw.url(`${root(provider.port)}/three`), { method: 'POST', headers: sspHeaders(), body: 'x' });
      expect(posted.status).toBe(502);
      expect(requestLines(provider.received).filter((l) => l.includes('/three'))).toHaveLength(1);
    } finally {
      await gw.stop();
      await provider.close();
    }
  });

  test('over TLS with a client certificate: the retry connects with the same trust and certificate', async () => {
    const ca = TestCa.create('retry-ca');
    const server = ca.issue('provider', { usage: 'server' });
    const client = ca.issue('gateway', { usage: 'client' });
    const seen: string[] = [];
    const requests = new WeakMap<TLSSocket, number>();
    const provider = createTlsServer({ cert: server.certPem, key: server.keyPem, ca: ca.pem, requestCert: true, rejectUnauthorized: true }, (s) => {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        const line = d.toString('latin1').split('\r\n')[0];
        seen.push(line);
        const n = (requests.get(s) ?? 0) + 1;
        requests.set(s, n);
        if (n === 1) s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${line.length}\r\n\r\n${line}`);
        else s.destroy();
      });
    });
    await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
    const port = (provider.address() as AddressInfo).port;
    const tlsRoot = `https://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir`;
    const gw = await startGateway(directoryYaml({ metadata: tlsRoot }), {
      UPSTREAM_MAX_SOCKETS: '1',
      UPSTREAM_IDLE_MS: '10000',
      UPSTREAM_CA_FILE: ca.certFile,
      UPSTREAM_CERT_FILE: client.cert,
      UPSTREAM_KEY_FILE: client.key,
    });
    try {
      expect((await send(gw.url(`${tlsRoot}/one`), { headers: sspHeaders() })).status).toBe(200);
      const second = await send(gw.url(`${tlsRoot}/two`), { headers: sspHeaders() });
      expect(second.status).toBe(200);
      expect(second.body.toString()).toContain('/two');
      expect(seen.filter((l) => l.includes('/two'))).toHaveLength(2);
    } finally {
      await gw.stop();
      await new Promise((r) => provider.close(r));
    }
  });
});

import { request } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  abandonAfter,
  directoryYaml,
  eventually,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/** A raw TCP "provider" whose behaviour each test sets: reset, stall, half a response. */
async function tcpProvider(onSocket: (s: Socket) => void): Promise<{ port: number; close(): Promise<void>; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const root = (port: number) => `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir`;
const display = (body: Buffer) => JSON.parse(body.toString()).issue[0].details.coding[0].display as string;

describe('provider faults', () => {
  let healthy: TestProvider;
  beforeAll(async () => {
    healthy = await startProvider(okHandler());
  });
  afterAll(() => healthy.close());

  async function gatewayFor(faultyPort: number, env: Record<string, string> = {}): Promise<RunningGateway> {
    // The faulty provider answers the metadata interaction; the healthy one the structured one.
    const yaml = directoryYaml({ metadata: root(faultyPort) }).replace(
      'agreements:',
      `  - asid: "900000000001"\n    ods: "B00001"\n    endpoints:\n      - url: ${healthy.root}\n        interactions: [urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1]\nagreements:`,
    );
    return startGateway(yaml, env);
  }
  const healthyHeaders = () => sspHeaders({ 'Ssp-To': '900000000001' });
  async function healthyStill(gw: RunningGateway) {
    const r = await send(gw.url(`${healthy.root}/metadata`), { headers: healthyHeaders() });
    expect(r.status).toBe(200);
  }

  test('provider unreachable: 502 ERROR_COMMUNICATING_TO_ENDPOINT_URL, no query echoed', async () => {
    const closed = await tcpProvider(() => {});
    const port = closed.port;
    await closed.close(); // nothing listens there now
    const gw = await gatewayFor(port);
    try {
      const r = await send(gw.url(`${root(port)}/Patient?identifier=secret-9000000009`), { headers: sspHeaders() });
      expect(r.status).toBe(502);
      expect(display(r.body)).toBe(`ERROR_COMMUNICATING_TO_ENDPOINT_URL_${root(port)}/Patient`);
      expect(r.body.toString()).not.toContain('secret-9000000009');
      await healthyStill(gw);
    } finally {
      await gw.stop();
    }
  });

  test('provider resets the connection before answering: 502', async () => {
    const resetter = await tcpProvider((s) => s.once('data', () => s.resetAndDestroy()));
    const gw = await gatewayFor(resetter.port);
    try {
      const r = await send(gw.url(`${root(resetter.port)}/metadata`), { headers: sspHeaders() });
      expect(r.status).toBe(502);
      expect(display(r.body)).toMatch(/^ERROR_COMMUNICATING_TO_ENDPOINT_URL_/);
      await healthyStill(gw);
    } finally {
      await gw.stop();
      await resetter.close();
    }
  });

  test("provider breaks the connection mid-response: the consumer's connection breaks too, never a clean short 200", async () => {
    const halfway = await tcpProvider((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n');
        s.write(randomBytes(5000), () => setTimeout(() => s.resetAndDestroy(), 20));
      }),
    );
    const gw = await gatewayFor(halfway.port);
    try {
      const outcome = await new Promise<string>((resolve) => {
        const req = request(gw.url(`${root(halfway.port)}/metadata`), { headers: sspHeaders(), agent: false }, (res) => {
          let bytes = 0;
          res.on('data', (c) => (bytes += c.length));
          res.on('end', () => resolve(`clean end after ${bytes}`));
          res.on('error', (e) => resolve(`broken: ${(e as NodeJS.ErrnoException).code}`));
          res.on('aborted', () => resolve('broken: aborted'));
        });
        req.on('error', (e) => resolve(`broken: ${(e as NodeJS.ErrnoException).code}`));
        req.end();
      });
      expect(outcome).toMatch(/^broken/);
      await healthyStill(gw);
    } finally {
      await gw.stop();
      await halfway.close();
    }
  });

  test('provider silent past UPSTREAM_TIMEOUT_MS: 504', async () => {
    const silent = await tcpProvider((s) => s.resume());
    const gw = await gatewayFor(silent.port, { UPSTREAM_TIMEOUT_MS: '300' });
    try {
      const started = Date.now();
      const r = await send(gw.url(`${root(silent.port)}/metadata`), { headers: sspHeaders() });
      expect(r.status).toBe(504);
      expect(display(r.body)).toBe('UPSTREAM_TIMEOUT');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      await eventually(() => silent.sockets.size === 0, 2000, 'the timed-out provider socket to close');
      await healthyStill(gw);
    } finally {
      await gw.stop();
      await silent.close();
    }
  });
});

describe('consumer goes away', () => {
  let gw: RunningGateway;
  let provider: TestProvider;
  let providerSawClose: Promise<void>;
  let mode: 'slow-download' | 'read-upload' | 'ok';

  beforeAll(async () => {
    provider = await startProvider((req, res) => {
      providerSawClose = new Promise((resolve) => res.on('close', () => resolve()));
      if (mode === 'slow-download') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        const tick = setInterval(() => res.write(randomBytes(16 * 1024)), 5);
        res.on('close', () => clearInterval(tick));
      } else if (mode === 'read-upload') {
        req.resume(); // read the upload forever, never answer
      } else {
        okHandler()(req, res);
      }
    });
    gw = await startGateway(directoryYaml({ metadata: provider.root }));
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });

  test('mid-download: the provider request is aborted', async () => {
    mode = 'slow-download';
    await abandonAfter(gw.url(`${provider.root}/metadata`), sspHeaders(), 100_000);
    await expect(
      Promise.race([providerSawClose, new Promise((_, rej) => setTimeout(() => rej(new Error('provider never saw the abort')), 3000))]),
    ).resolves.toBeUndefined();
    await stillServesHere();
  });

  test('mid-upload: the provider request is aborted', async () => {
    mode = 'read-upload';
    const req = request(gw.url(`${provider.root}/metadata`), { method: 'POST', headers: sspHeaders(), agent: false });
    req.on('error', () => {});
    req.write(randomBytes(64 * 1024));
    await eventually(() => provider.requests.length > 0 && providerSawClose !== undefined, 3000, 'the upload to reach the provider');
    req.destroy();
    await expect(
      Promise.race([providerSawClose, new Promise((_, rej) => setTimeout(() => rej(new Error('provider never saw the abort')), 3000))]),
    ).resolves.toBeUndefined();
    await stillServesHere();
  });

  /** The same gateway still forwards to the same provider afterwards. */
  async function stillServesHere() {
    mode = 'ok';
    const r = await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() });
    expect(r.status).toBe(200);
  }
});

describe('connection pooling to providers', () => {
  test('keep-alive reuses sockets and never opens more than UPSTREAM_MAX_SOCKETS per host', async () => {
    let open = 0;
    let peak = 0;
    const provider = await startProvider((_req, res) => {
      open++;
      peak = Math.max(peak, open);
      setTimeout(() => {
        open--;
        res.writeHead(200, { 'Content-Length': '2' });
        res.end('ok');
      }, 20);
    });
    const gw = await startGateway(directoryYaml({ metadata: provider.root }), { UPSTREAM_MAX_SOCKETS: '3' });
    try {
      const replies = await Promise.all(Array.from({ length: 30 }, () => send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })));
      expect(replies.every((r) => r.status === 200)).toBe(true);
      expect(peak).toBeLessThanOrEqual(3);
      expect(provider.connections).toBeLessThanOrEqual(3);
      expect(provider.requests.length).toBe(30);
    } finally {
      await gw.stop();
      await provider.close();
    }
  });
});

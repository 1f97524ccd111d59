import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { directoryYaml, eventually, send, sspHeaders, startGateway, type RunningGateway } from '../helpers/test-kit';
import { gatewayRequest, rawClient, statusLines, transactionLines } from '../helpers/engine-kit';

/**
 * Who is to blame for a stall. The consumer's silence (an upload that
 * stops, a download it does not read) ends as `client_timeout` after
 * CLIENT_IDLE_TIMEOUT_MS; `upstream_timeout` is kept for the provider's own silence, and
 * its timer never runs while the gateway itself holds the provider back.
 */

const PATH = '/A20047/STU3/1/gpconnect/fhir';
const BIG = 64 * 1024 * 1024;

let provider: Server;
let port: number;
let gw: RunningGateway;
/** The Ssp-TraceID of each provider request whose response closed: a late close from an earlier test names its own trace. */
let providerClosed: string[];
let mode: 'download' | 'late-download' | 'read-upload' | 'no-read' | 'silent';
const root = () => `http://127.0.0.1:${port}${PATH}`;

beforeAll(async () => {
  provider = createServer((req, res) => {
    res.on('close', () => providerClosed.push(String(req.headers['ssp-traceid'])));
    if (mode === 'download' || mode === 'late-download') {
      // 64 MiB, as fast as the gateway takes it ('late-download': after a pause past the consumer's idle timeout).
      if (mode === 'late-download') {
        mode = 'download';
        return void setTimeout(() => provider.emit('request', req, res), 800);
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(BIG) });
      const block = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = (): void => {
        while (sent < BIG) {
          sent += block.length;
          if (!res.write(block)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (mode === 'read-upload') {
      req.resume();
      req.on('end', () => res.end('uploaded'));
    } else if (mode === 'no-read') {
      // Never reads the upload: the gateway is held back by the provider.
      req.pause();
    }
    // 'silent': never answers.
  });
  await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
  port = (provider.address() as AddressInfo).port;
  gw = await startGateway(directoryYaml({ metadata: root() }), { UPSTREAM_TIMEOUT_MS: '400', CLIENT_IDLE_TIMEOUT_MS: '700' });
});
afterAll(async () => {
  await gw.stop();
  provider.closeAllConnections();
  await new Promise((r) => provider.close(r));
});
beforeEach(() => {
  providerClosed = [];
});

async function recordFor(traceId: string): Promise<Record<string, unknown>> {
  await eventually(() => transactionLines(gw, traceId).length > 0, 5000, 'the transaction record');
  const rows = transactionLines(gw, traceId);
  expect(rows).toHaveLength(1);
  return rows[0];
}

test('a consumer that never reads a 64 MiB download: client_timeout, both connections broken, never upstream_timeout', async () => {
  mode = 'download';
  const trace = randomUUID();
  const c = await rawClient(gw.proxyPort);
  c.socket.pause(); // reads nothing at all
  const started = Date.now();
  c.write(gatewayRequest(`${root()}/Binary/big`, sspHeaders({ 'Ssp-TraceID': trace })));
  const row = await recordFor(trace);
  expect(row).toMatchObject({ outcome: 'client_timeout', error_code: 'CLIENT_TIMEOUT', status: 200 });
  expect(Number(row.response_bytes)).toBeLessThan(BIG);
  expect(Date.now() - started).toBeGreaterThanOrEqual(650);
  await eventually(() => providerClosed.filter((t) => t === trace).length === 1, 5000, 'the provider request to be aborted');
  c.close();
});

test('a consumer that waited longer than its idle timeout for the provider, then does not read: still client_timeout', async () => {
  mode = 'late-download';
  // Here the consumer's idle timeout (500 ms) is shorter than the provider's (1500 ms).
  const patient = await startGateway(directoryYaml({ metadata: root() }), { UPSTREAM_TIMEOUT_MS: '1500', CLIENT_IDLE_TIMEOUT_MS: '500' });
  const trace = randomUUID();
  const c = await rawClient(patient.proxyPort);
  try {
    c.socket.pause();
    c.write(gatewayRequest(`${root()}/Binary/late`, sspHeaders({ 'Ssp-TraceID': trace })));
    await eventually(() => transactionLines(patient, trace).length > 0, 5000, 'the transaction record');
    expect(transactionLines(patient, trace)).toEqual([expect.objectContaining({ outcome: 'client_timeout', status: 200 })]);
  } finally {
    c.close();
    await patient.stop();
  }
});

test('a consumer uploading one byte every 1000 ms with a 700 ms idle timeout: 408 CLIENT_TIMEOUT, provider request aborted', async () => {
  mode = 'read-upload';
  const trace = randomUUID();
  const c = await rawClient(gw.proxyPort);
  c.write(gatewayRequest(`${root()}/Binary`, sspHeaders({ 'Ssp-TraceID': trace }), 'Content-Length: 100\r\n', 'POST') + 'x');
  const tick = setInterval(() => !c.closed && c.write('x'), 1000);
  try {
    const text = await c.until((t) => t.includes('}'), 4000);
    expect(statusLines(text)).toEqual(['HTTP/1.1 408 Request Timeout']);
    expect(text).toContain('CLIENT_TIMEOUT');
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    const row = await recordFor(trace);
    expect(row).toMatchObject({ outcome: 'client_timeout', error_code: 'CLIENT_TIMEOUT', status: 408 });
    await eventually(() => providerClosed.filter((t) => t === trace).length === 1, 5000, 'the provider request to be aborted');
  } finally {
    clearInterval(tick);
    c.close();
  }
});

test('a slow upload that keeps sending within the idle timeout is not cut', async () => {
  mode = 'read-upload';
  const trace = randomUUID();
  const c = await rawClient(gw.proxyPort);
  c.write(gatewayRequest(`${root()}/Binary`, sspHeaders({ 'Ssp-TraceID': trace }), 'Content-Length: 6\r\n', 'POST') + 'x');
  let sent = 1;
  const tick = setInterval(() => {
    if (sent < 6 && !c.closed) {
      c.write('x');
      sent++;
    }
  }, 250);
  try {
    const text = await c.until((t) => t.includes('uploaded'), 4000);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect((await recordFor(trace)).outcome).toBe('forwarded');
  } finally {
    clearInterval(tick);
    c.close();
  }
});

test("a provider that stops reading an upload is the provider's stall: upstream_timeout", async () => {
  mode = 'no-read';
  const trace = randomUUID();
  const c = await rawClient(gw.proxyPort);
  const size = 32 * 1024 * 1024;
  c.write(gatewayRequest(`${root()}/Binary`, sspHeaders({ 'Ssp-TraceID': trace }), `Content-Length: ${size}\r\n`, 'POST'));
  const block = Buffer.alloc(256 * 1024, 1);
  let sent = 0;
  const pump = (): void => {
    while (sent < size && !c.closed) {
      sent += block.length;
      if (!c.socket.write(block)) return void c.socket.once('drain', pump);
    }
  };
  pump();
  try {
    const row = await recordFor(trace);
    expect(row).toMatchObject({ outcome: 'upstream_timeout', error_code: 'UPSTREAM_TIMEOUT' });
  } finally {
    c.close();
  }
});

test("a provider silent after an upload that paused past UPSTREAM_TIMEOUT_MS: still 504 (the timer that was not the provider's fault re-arms)", async () => {
  mode = 'silent';
  const trace = randomUUID();
  const c = await rawClient(gw.proxyPort);
  c.write(gatewayRequest(`${root()}/Binary`, sspHeaders({ 'Ssp-TraceID': trace }), 'Content-Length: 4\r\n', 'POST') + 'ab');
  try {
    // The provider's timer (400 ms) fires during this pause: the consumer is the one silent.
    await new Promise((r) => setTimeout(r, 550));
    c.write('cd');
    const text = await c.until((t) => t.includes('}'), 3000);
    expect(statusLines(text)).toEqual(['HTTP/1.1 504 Gateway Timeout']);
    expect((await recordFor(trace)).outcome).toBe('upstream_timeout');
  } finally {
    c.close();
  }
});

test('a provider silent after the whole request: 504 upstream_timeout, as before', async () => {
  mode = 'silent';
  const trace = randomUUID();
  const r = await send(gw.url(`${root()}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': trace }) });
  expect(r.status).toBe(504);
  expect((await recordFor(trace)).outcome).toBe('upstream_timeout');
});

test('client_timeout is counted in spine_gateway_requests_total', async () => {
  const r = await send(`http://127.0.0.1:${gw.adminPort}/metrics`);
  expect(r.body.toString()).toMatch(/spine_gateway_requests_total\{[^}]*outcome="client_timeout"[^}]*\} [1-9]/);
});

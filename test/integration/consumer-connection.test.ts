import { request as httpRequest, Agent } from 'node:http';
import { directoryYaml, rawExchange, startGateway, startProvider, type RunningGateway, type TestProvider } from '../helpers/test-kit';
import { RawConnection, displayOf, recordsFor, sspLines, statusLines } from '../helpers/raw-conn';

/**
 * The consumer connection: what a consumer can do with
 * the bytes on its own connection — smuggle through `Connection`, upgrade, flood header
 * lines, stall, send garbage mid-response, pipeline — always with raw bytes on real
 * sockets, checking what the consumer got, what the provider saw and the records.
 */
let provider: TestProvider;
let gw: RunningGateway;
let ROOT: string;
let active = 0;
let maxActive = 0;

const SMUGGLED = 'GET /A20047/fhir/Patient/9000000009 HTTP/1.1\r\nHost: x\r\nSsp-From: 999\r\n\r\n';

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    active++;
    maxActive = Math.max(maxActive, active);
    res.on('close', () => active--);
    const url = req.url ?? '';
    req.resume();
    if (url.includes('/slow-cl')) {
      // Three chunks 300 ms apart: the response is still in progress once chunk1 has arrived.
      // ?n=N: a body of N bytes, chunk1 chunk2 then z...z (N >= 18).
      const n = Number(/[?&]n=(\d+)/.exec(url)?.[1] ?? 18);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(n) });
      res.write('chunk1');
      setTimeout(() => res.write('chunk2'), 300);
      setTimeout(() => res.end(n === 18 ? 'chunk3' : 'z'.repeat(n - 12)), 600);
    } else if (url.includes('/slow-chunked')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('chunk1');
      setTimeout(() => res.write('chunk2'), 300);
      setTimeout(() => res.end('chunk3'), 600);
    } else if (url.includes('/delay')) {
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`echo ${url}`);
      }, 40);
    } else {
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`echo ${url} from ${req.headers['ssp-from'] ?? ''}`);
      });
    }
  });
  ROOT = provider.root;
  gw = await startGateway(directoryYaml({ metadata: ROOT }), {
    MAX_HEADER_LINES: '20',
    HEADERS_TIMEOUT_MS: '500',
    MAX_HEADER_BYTES: '8192',
    LOG_LEVEL: 'info',
  });
});
afterAll(async () => {
  await gw.stop();
  await provider.close();
});

const byTrace = (traceId: string) => (r: Record<string, unknown>) => r.trace_id === traceId;

function get(path: string, extra = '', method = 'GET'): { traceId: string; text: string } {
  const { traceId, lines } = sspLines();
  return { traceId, text: `${method} /${ROOT}${path} HTTP/1.1\r\nHost: gateway.local\r\n${lines}${extra}` };
}

describe('1. Connection options that would desynchronise framing are refused', () => {
  const body = SMUGGLED;
  const cl = `Content-Length: ${body.length}\r\n`;
  const chunked = `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  type Case = [name: string, method: string, headerLines: string, rest: string];
  const cases: Case[] = [
    ['Connection: Content-Length', 'GET', 'Connection: Content-Length\r\n' + cl, body],
    ['lower case', 'GET', 'connection: content-length\r\n' + cl, body],
    ['upper case', 'GET', 'CONNECTION: CONTENT-LENGTH\r\n' + cl, body],
    ['padded with spaces and tabs', 'GET', 'Connection: \t Content-Length \t\r\n' + cl, body],
    ['in a list', 'GET', 'Connection: keep-alive, Content-Length\r\n' + cl, body],
    ['in a list without spaces', 'GET', 'Connection: keep-alive,Content-Length,close\r\n' + cl, body],
    ['in a list with a tab', 'GET', 'Connection: keep-alive,\tContent-Length\r\n' + cl, body],
    ['in a list with empty elements', 'GET', 'Connection: , ,Content-Length, \r\n' + cl, body],
    ['on a second Connection line', 'GET', 'Connection: keep-alive\r\nConnection: Content-Length\r\n' + cl, body],
    ['HEAD', 'HEAD', 'Connection: Content-Length\r\n' + cl, body],
    ['POST', 'POST', 'Connection: Content-Length\r\nContent-Type: application/fhir+json\r\n' + cl, body],
    ['Transfer-Encoding with a chunked body', 'POST', 'Connection: Transfer-Encoding\r\n', chunked],
    ['Transfer-Encoding, mixed case, in a list', 'POST', 'Connection: close ,tRANSFER-eNCODING\r\n', chunked],
    ['Host', 'GET', 'Connection: Host\r\n', ''],
    ['Authorization', 'GET', 'Connection: Authorization\r\nAuthorization: Bearer x.y.\r\n', ''],
    ['Expect', 'POST', 'Connection: Expect\r\n' + cl, body],
    ['Expect with Expect: 100-continue', 'POST', 'Connection: Expect\r\nExpect: 100-continue\r\n' + cl, body],
    ['Content-Length with Expect: 100-continue', 'POST', 'Connection: Content-Length\r\nExpect: 100-continue\r\n' + cl, body],
    ['Upgrade (no Upgrade header)', 'GET', 'Connection: Upgrade\r\n', ''],
    ['Ssp-TraceID', 'GET', 'Connection: Ssp-TraceID\r\n', ''],
    ['ssp-from', 'GET', 'Connection: ssp-from\r\n', ''],
    ['Ssp-To', 'GET', 'Connection: keep-alive, Ssp-To\r\n', ''],
    ['Ssp-InteractionID', 'GET', 'Connection: SSP-INTERACTIONID\r\n', ''],
    ['any Ssp-* name', 'GET', 'Connection: Ssp-Whatever\r\n', ''],
  ];

  test.each(cases)('%s: 400 CONNECTION_OPTION_NOT_ALLOWED, nothing reaches a provider, one record, no reuse', async (_name, method, headerLines, rest) => {
    const before = provider.connections;
    const seen = provider.requests.length;
    const req = get('/metadata', headerLines, method);
    // A good request follows on the same connection: it must not be parsed out of the refused body.
    const next = get('/metadata', 'Connection: close\r\n');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n${rest}${next.text}\r\n`, 1500);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    if (method !== 'HEAD') expect(displayOf(raw)).toBe('CONNECTION_OPTION_NOT_ALLOWED');
    expect(raw).toMatch(/\r\nConnection: close\r\n/i);
    expect(provider.connections).toBe(before);
    expect(provider.requests.length).toBe(seen);
    const records = await recordsFor(gw.logFile, byTrace(req.traceId));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'denied', status: 400, error_code: 'CONNECTION_OPTION_NOT_ALLOWED' });
    expect(await recordsFor(gw.logFile, byTrace(next.traceId), 0, 0)).toHaveLength(0);
  });

  test.each([
    ['keep-alive', 'Connection: keep-alive\r\n'],
    ['close', 'Connection: close\r\n'],
    ['an extension field it names', 'Connection: X-Hop\r\nX-Hop: 1\r\n'],
  ])('control: Connection: %s is forwarded', async (_name, lines) => {
    const req = get('/metadata', `${lines}Connection: close\r\n`);
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n`);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
  });

  test('cross-consumer: the attacker is refused and a second consumer gets only its own response', async () => {
    const seen = provider.requests.length;
    const attacker = new RawConnection(gw.proxyPort);
    const victim = new RawConnection(gw.proxyPort);
    await Promise.all([attacker.whenOpen, victim.whenOpen]);
    const a = get('/metadata', `Connection: Content-Length\r\nContent-Length: ${SMUGGLED.length}\r\n`);
    attacker.write(`${a.text}\r\n${SMUGGLED}`);
    const v = get('/delay?who=victim');
    victim.write(`${v.text}\r\n`);
    const attackerRaw = await attacker.until((t) => t.includes('}'), 2000);
    const victimRaw = await victim.until((t) => t.includes('echo'), 2000);
    // The attacker asks again on its connection: it gets nothing of the victim's.
    attacker.write(`${get('/metadata').text}\r\n`);
    await attacker.closes(1500);
    expect(statusLines(attacker.text())).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(attackerRaw)).toBe('CONNECTION_OPTION_NOT_ALLOWED');
    expect(statusLines(victimRaw)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(victimRaw).toContain('echo /A20047/STU3/1/gpconnect/fhir/delay?who=victim');
    expect(provider.requests.slice(seen).map((r) => r.url)).toEqual(['/A20047/STU3/1/gpconnect/fhir/delay?who=victim']);
    attacker.destroy();
    victim.destroy();
  });
});

describe('4. Consumer upgrades are refused with 400 UPGRADE_NOT_SUPPORTED', () => {
  test.each([
    ['websocket', 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'],
    ['h2c', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n'],
    ['Upgrade without Connection: upgrade', 'Upgrade: websocket\r\n'],
    ['Upgrade with Connection: keep-alive', 'Connection: keep-alive\r\nUpgrade: h2c\r\n'],
  ])('%s', async (_name, lines) => {
    const before = provider.connections;
    const req = get('/metadata', lines);
    const started = Date.now();
    const conn = new RawConnection(gw.proxyPort);
    conn.write(`${req.text}\r\n`);
    expect(await conn.closes(2500)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2500);
    const raw = conn.text();
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('UPGRADE_NOT_SUPPORTED');
    expect(raw).toMatch(/\r\nContent-Type: application\/fhir\+json; charset=utf-8\r\n/);
    expect(provider.connections).toBe(before);
    const records = await recordsFor(gw.logFile, byTrace(req.traceId));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'denied', status: 400, error_code: 'UPGRADE_NOT_SUPPORTED', consumer_asid: expect.any(String) });
  });

  test('CONNECT gets an OperationOutcome and a record, not a bare close', async () => {
    const { traceId, lines } = sspLines();
    const raw = await rawExchange(gw.proxyPort, `CONNECT 127.0.0.1:${provider.port} HTTP/1.1\r\nHost: 127.0.0.1:${provider.port}\r\n${lines}\r\n`, 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 405 Method Not Allowed\r\n']);
    expect(displayOf(raw)).toBe('405: Method Not Allowed');
    expect(await recordsFor(gw.logFile, byTrace(traceId))).toHaveLength(1);
  });
});

describe('6. Caps on the request head', () => {
  const junk = (n: number) => Array.from({ length: n }, (_, i) => `X-Line-${i}: v\r\n`).join('');

  test('more header lines than MAX_HEADER_LINES: 431 TOO_MANY_HEADERS, one record', async () => {
    const before = provider.connections;
    const req = get('/metadata', `${junk(20)}Connection: close\r\n`);
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n`);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 431 Request Header Fields Too Large\r\n']);
    expect(displayOf(raw)).toBe('TOO_MANY_HEADERS');
    expect(provider.connections).toBe(before);
    const records = await recordsFor(gw.logFile, byTrace(req.traceId));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'denied', status: 431, error_code: 'TOO_MANY_HEADERS' });
  });

  test('control: exactly MAX_HEADER_LINES lines pass', async () => {
    // Host + 4 Ssp-* + Connection = 6 lines; 14 more makes 20.
    const req = get('/metadata', `${junk(14)}Connection: close\r\n`);
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n`);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
  });

  test('headers that stall past HEADERS_TIMEOUT_MS: 408 REQUEST_TIMEOUT, one record', async () => {
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    const started = Date.now();
    conn.write(`GET /${ROOT}/metadata HTTP/1.1\r\nHost: gateway.local\r\nSsp-From: 200000000359\r\n`);
    expect(await conn.closes(4000)).toBe(true);
    const raw = conn.text();
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 408 Request Timeout\r\n']);
    expect(displayOf(raw)).toBe('REQUEST_TIMEOUT');
    const records = await recordsFor(gw.logFile, (r) => r.error_code === 'REQUEST_TIMEOUT');
    expect(records.length).toBeGreaterThanOrEqual(1);
    expect(records.at(-1)).toMatchObject({ outcome: 'denied', status: 408 });
  });

  test('a connection that sends nothing is closed at the header timeout without a record', async () => {
    const before = (await recordsFor(gw.logFile, () => true, 0, 0)).length;
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    expect(await conn.closes(4000)).toBe(true);
    expect(conn.text()).toBe('');
    expect((await recordsFor(gw.logFile, () => true, 0, 0)).length).toBe(before);
  });

  test.each([
    ['Transfer-Encoding: xchunked', 'Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['a chunk size that overflows mid-body', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nFFFFFFFFFFFFFFFFFFFFFF\r\n'],
    ['a bad chunk terminator mid-body', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n'],
  ])('a parser error after the handler started (%s) writes one record, the refusal', async (_name, rest) => {
    const req = get('/metadata', '', 'POST');
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    conn.write(`${req.text}${rest}`);
    await conn.closes(3000);
    const raw = conn.text();
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MALFORMED_HTTP_REQUEST');
    const records = await recordsFor(gw.logFile, byTrace(req.traceId));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'denied', status: 400, error_code: 'MALFORMED_HTTP_REQUEST' });
    expect(await recordsFor(gw.logFile, (r) => r.outcome === 'client_aborted' && r.trace_id === req.traceId, 0, 0)).toHaveLength(0);
  });
});

test('a consumer that keeps sending after its bad chunk still reads the whole refusal', async () => {
  const req = get('/metadata', 'Transfer-Encoding: chunked\r\n', 'POST');
  const conn = new RawConnection(gw.proxyPort);
  await conn.whenOpen;
  conn.write(`${req.text}\r\n5\r\nhello\r\nZZ-not-a-size\r\n`);
  const junk = Buffer.alloc(64 * 1024, 0x41);
  const deadline = Date.now() + 600;
  while (Date.now() < deadline && !conn.closed) {
    conn.write(junk);
    await new Promise((r) => setTimeout(r, 20));
  }
  await conn.until((t) => t.endsWith('}'), 2000);
  const raw = conn.text();
  expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
  expect(displayOf(raw)).toBe('MALFORMED_HTTP_REQUEST');
  expect(await conn.closes(4000)).toBe(true);
});

describe('10. Never write into a response in progress', () => {
  test.each([
    ['chunked', '/slow-chunked', (t: string) => t.includes('0\r\n\r\n'), '6\r\nchunk1\r\n6\r\nchunk2\r\n6\r\nchunk3\r\n0\r\n\r\n'],
    ['Content-Length', '/slow-cl', (t: string) => t.endsWith('chunk3'), 'chunk1chunk2chunk3'],
  ])('%s response: garbage from the consumer mid-response does not land in its body', async (_name, path, complete, wholeBody) => {
    for (const garbage of ['\x01\x02 NOT HTTP\r\n\r\n', `GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ${'y'.repeat(9000)}\r\n\r\n`]) {
      const req = get(path);
      const conn = new RawConnection(gw.proxyPort);
      await conn.whenOpen;
      conn.write(`${req.text}\r\n`);
      await conn.until((t) => t.includes('chunk1'), 2000);
      conn.write(garbage);
      await conn.until(complete, 3000);
      await conn.closes(2000);
      const raw = conn.text();
      expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
      expect(raw.slice(raw.indexOf('\r\n\r\n') + 4)).toBe(wholeBody);
      expect(conn.closed).toBe(true);
      const records = await recordsFor(gw.logFile, byTrace(req.traceId));
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ outcome: 'forwarded', status: 200 });
    }
  });

  test.each(['\x01\x02 NOT HTTP\r\n\r\n', `GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ${'y'.repeat(9000)}\r\n\r\n`])(
    'a stock Node client never sees a clean 200 with the wrong body (%#)',
    async (garbage) => {
      // The body's remainder is exactly as long as the gateway's own refusal for this garbage:
      // a gateway that wrote its refusal into the response would complete it cleanly.
      const refusalLength = (await rawExchange(gw.proxyPort, garbage)).length;
      const n = 6 + refusalLength;
      const expected = `chunk1chunk2${'z'.repeat(n - 12)}`;
      const agent = new Agent({ keepAlive: true });
      const { lines } = sspLines();
      const headers: Record<string, string> = {};
      for (const line of lines.trim().split('\r\n')) {
        const i = line.indexOf(':');
        headers[line.slice(0, i)] = line.slice(i + 2);
      }
      const outcome = await new Promise<{ status: number; body: string } | { error: string }>((resolve) => {
        const req = httpRequest(`http://127.0.0.1:${gw.proxyPort}/${ROOT}/slow-cl?n=${n}`, { headers, agent }, (res) => {
          let body = '';
          let sent = false;
          res.setEncoding('latin1');
          res.on('data', (c: string) => {
            body += c;
            if (!sent) {
              sent = true;
              req.socket?.write(garbage);
            }
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', (e) => resolve({ error: String(e) }));
        });
        req.on('error', (e) => resolve({ error: String(e) }));
        req.end();
      });
      agent.destroy();
      // A broken connection is acceptable; a complete 200 must carry the provider's bytes.
      if ('status' in outcome) expect(outcome).toEqual({ status: 200, body: expected });
    },
  );
});

describe('10. (continued) upgrades and refusals mid-stream', () => {
  test('an Upgrade pipelined behind a streaming response is not answered inside it', async () => {
    const req = get('/slow-chunked');
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    conn.write(`${req.text}\r\n`);
    await conn.until((t) => t.includes('chunk1'), 2000);
    const up = get('/metadata', 'Connection: Upgrade\r\nUpgrade: websocket\r\n');
    conn.write(`${up.text}\r\n`);
    await conn.closes(3000);
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(conn.text()).not.toContain('UPGRADE_NOT_SUPPORTED');
    const records = await recordsFor(gw.logFile, byTrace(up.traceId));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ error_code: 'UPGRADE_NOT_SUPPORTED', response_bytes: 0 });
  });

  test('a refusal sent while a chunked body is still coming is delivered whole when the body then turns bad', async () => {
    const { traceId } = sspLines();
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    // Ssp-From is missing: refused at once, with Connection: close, while the body is still open.
    conn.write(`POST /${ROOT}/metadata HTTP/1.1\r\nHost: gw\r\nSsp-TraceID: ${traceId}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    await conn.until((t) => t.includes('"resourceType"') && t.endsWith('}'), 2000);
    conn.write('ZZZ-not-a-chunk-size\r\n');
    await conn.closes(3000);
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(conn.text())).toBe('MISSING_OR_INVALID_HEADER');
    expect(await recordsFor(gw.logFile, byTrace(traceId))).toHaveLength(1);
  });
});

describe('11. Framing and connection reuse on the consumer side', () => {
  test('HTTP/1.0 with Transfer-Encoding: chunked is refused and the connection is not reused', async () => {
    const seen = provider.requests.length;
    const { traceId, lines } = sspLines();
    const next = get('/metadata', 'Connection: close\r\n');
    const raw = await rawExchange(
      gw.proxyPort,
      `POST /${ROOT}/metadata HTTP/1.0\r\nHost: gateway.local\r\n${lines}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${next.text}\r\n`,
      1500,
    );
    expect(statusLines(raw.replace('HTTP/1.0', 'HTTP/1.1')).length).toBe(1);
    expect(raw).toMatch(/^HTTP\/1\.[01] 400 /);
    expect(displayOf(raw)).toBe('MALFORMED_HTTP_REQUEST');
    expect(provider.requests.length).toBe(seen);
    expect(await recordsFor(gw.logFile, byTrace(traceId))).toHaveLength(1);
    expect(await recordsFor(gw.logFile, byTrace(next.traceId), 0, 0)).toHaveLength(0);
  });

  test('20 pipelined requests: one at a time to the provider, answered in order', async () => {
    maxActive = 0;
    const before = provider.connections;
    let text = '';
    for (let i = 0; i < 20; i++) text += `${get(`/delay?i=${i}`, i === 19 ? 'Connection: close\r\n' : '').text}\r\n`;
    const raw = await rawExchange(gw.proxyPort, text, 8000);
    expect(statusLines(raw)).toHaveLength(20);
    const order = [...raw.matchAll(/echo \/A20047\/STU3\/1\/gpconnect\/fhir\/delay\?i=(\d+)/g)].map((m) => Number(m[1]));
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(maxActive).toBe(1);
    expect(provider.connections - before).toBeLessThanOrEqual(1);
  });

  test('pipelined requests with a refusal among them: every answer in its place', async () => {
    let text = '';
    for (let i = 0; i < 6; i++) {
      const extra = i === 5 ? 'Connection: close\r\n' : '';
      text += i === 2 ? `GET /${ROOT}/delay?i=2 HTTP/1.1\r\nHost: gw\r\nSsp-From: 1\r\n${extra}\r\n` : `${get(`/delay?i=${i}`, extra).text}\r\n`;
    }
    const raw = await rawExchange(gw.proxyPort, text, 5000);
    expect(statusLines(raw).map((l) => l.slice(9, 12))).toEqual(['200', '200', '400', '200', '200', '200']);
    const order = [...raw.matchAll(/delay\?i=(\d+)/g)].map((m) => Number(m[1]));
    expect(order).toEqual([0, 1, 3, 4, 5]);
  });

  test('an HTTP/1.1 request without Host: OperationOutcome and one record', async () => {
    const { traceId, lines } = sspLines();
    const raw = await rawExchange(gw.proxyPort, `GET /${ROOT}/metadata HTTP/1.1\r\n${lines}Connection: close\r\n\r\n`);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MISSING_OR_INVALID_HEADER');
    expect(raw).toMatch(/\r\nContent-Type: application\/fhir\+json; charset=utf-8\r\n/);
    expect(await recordsFor(gw.logFile, byTrace(traceId))).toHaveLength(1);
  });

  test('two Host lines are refused too', async () => {
    const { traceId, lines } = sspLines();
    const raw = await rawExchange(gw.proxyPort, `GET /${ROOT}/metadata HTTP/1.1\r\nHost: a\r\nHost: b\r\n${lines}Connection: close\r\n\r\n`);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MISSING_OR_INVALID_HEADER');
    expect(await recordsFor(gw.logFile, byTrace(traceId))).toHaveLength(1);
  });

  test('control: HTTP/1.0 without Host is forwarded', async () => {
    const { lines } = sspLines();
    const raw = await rawExchange(gw.proxyPort, `GET /${ROOT}/metadata HTTP/1.0\r\n${lines}\r\n`);
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  test('keep-alive still works: two requests on one connection', async () => {
    const conn = new RawConnection(gw.proxyPort);
    conn.write(`${get('/metadata').text}\r\n`);
    await conn.until((t) => statusLines(t).length === 1 && t.includes('echo'));
    conn.write(`${get('/metadata', 'Connection: close\r\n').text}\r\n`);
    await conn.closes(3000);
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\n']);
  });
});

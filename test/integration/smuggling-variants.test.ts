import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { TestCa } from '../helpers/pki';
import { directoryYaml, eventually, rawExchange, startGateway, startProvider, type RunningGateway, type TestProvider } from '../helpers/test-kit';
import { searchUntil } from '../helpers/audit-kit';
import { RawConnection, displayOf, recordsFor, sspLines, statusLines, transactionLines } from '../helpers/raw-conn';

/**
 * Request smuggling, desync and framing variants against the consumer port, with raw bytes on real sockets, an audit-enabled gateway and a
 * provider that records every request it parses (method, path, body) and counts its
 * connections. For each variant: what the consumer got, what the provider saw (only
 * requests the gateway checked, with the body the consumer framed), and exactly one
 * record per transaction.
 */
let provider: TestProvider;
let gw: RunningGateway;
let ROOT: string;
const seen: Array<{ method: string; url: string; body: string; rawHeaders: string[] }> = [];

/** What a smuggled request would look like if a provider ever parsed a body as a request. */
const SMUGGLED = 'GET /A20047/fhir/Patient/9000000009 HTTP/1.1\r\nHost: x\r\nSsp-From: 999\r\n\r\n';
const hex = (n: number) => n.toString(16);
const chunkedBody = (body: string) => `${hex(body.length)}\r\n${body}\r\n0\r\n\r\n`;

beforeAll(async () => {
  provider = await startProvider((req: IncomingMessage, res) => {
    if ((req.url ?? '').includes('/early')) {
      // Answers before the request body has arrived (as a provider refusing an upload may).
      seen.push({ method: req.method ?? '', url: req.url ?? '', body: '', rawHeaders: req.rawHeaders });
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '5' });
      res.end('early');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if ((req.url ?? '').includes('/slow')) await new Promise((r) => setTimeout(r, 1500));
      const body = Buffer.concat(chunks).toString('latin1');
      seen.push({ method: req.method ?? '', url: req.url ?? '', body, rawHeaders: req.rawHeaders });
      const text = `echo ${req.method} ${req.url} ${body.length}`;
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(text.length) });
      res.end(text);
    });
  });
  ROOT = provider.root;
  gw = await startGateway(directoryYaml({ metadata: ROOT }), {
    AUDIT_ENABLED: 'true',
    AUDIT_BATCH_MAX_AGE_MS: '50',
    HEADERS_TIMEOUT_MS: '600',
    LOG_LEVEL: 'info',
  });
});
afterAll(async () => {
  await gw?.stop();
  await provider?.close();
});

const byTrace = (traceId: string) => (r: Record<string, unknown>) => r.trace_id === traceId;
const paths = () => seen.map((s) => `${s.method} ${s.url}`);

/** A request head on the metadata endpoint with fresh valid Ssp-* lines (no blank line). */
function head(path = '/metadata', extra = '', method = 'GET', version = '1.1'): { traceId: string; text: string } {
  const { traceId, lines } = sspLines();
  return { traceId, text: `${method} /${ROOT}${path} HTTP/${version}\r\nHost: gateway.local\r\n${lines}${extra}` };
}

async function oneRecord(traceId: string): Promise<Record<string, unknown>> {
  const records = await recordsFor(gw.logFile, byTrace(traceId));
  expect(records).toHaveLength(1);
  return records[0];
}

describe('Expect: only 100-continue, always with an OperationOutcome and a record', () => {
  test.each([
    ['an unknown expectation', 'Expect: 200-ok\r\n'],
    ['an unknown expectation with a body', 'Expect: foo\r\nContent-Length: 5\r\n'],
    ['100-continue listed with another expectation', 'Expect: 100-continue, foo\r\nContent-Length: 5\r\n'],
    ['100-continue and a second Expect line', 'Expect: 100-continue\r\nExpect: foo\r\nContent-Length: 5\r\n'],
  ])("%s: 400 MISSING_OR_INVALID_HEADER (not Node's bare 417), one audit record, nothing forwarded", async (_name, lines) => {
    const before = provider.connections;
    const count = seen.length;
    const req = head('/metadata', lines, 'POST');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n${lines.includes('Content-Length') ? 'hello' : ''}`, 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MISSING_OR_INVALID_HEADER');
    expect(raw).toMatch(/\r\nConnection: close\r\n/);
    expect(provider.connections).toBe(before);
    expect(seen.length).toBe(count);
    expect(await oneRecord(req.traceId)).toMatchObject({ outcome: 'denied', status: 400, error_code: 'MISSING_OR_INVALID_HEADER' });
    // ...and in the audit store, once.
    const rows = await searchUntil(gw.adminPort, `trace_id=${req.traceId}`, (r) => r.length >= 1);
    expect(rows).toHaveLength(1);
  });

  test('HTTP/1.0 with Expect: 100-continue gets no 1xx (RFC 9110 15.2), just the response', async () => {
    const req = head('/metadata', 'Expect: 100-continue\r\nContent-Length: 5\r\n', 'POST', '1.0');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\nhello`, 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(raw).not.toContain('100 Continue');
    await oneRecord(req.traceId);
  });

  test('control: Expect: 100-continue on HTTP/1.1 is forwarded and the 100 relayed', async () => {
    const req = head('/metadata', 'Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n', 'POST');
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    conn.write(`${req.text}\r\n`);
    await conn.until((t) => t.includes('100 Continue'), 2000);
    conn.write('hello');
    await conn.closes(2000);
    conn.destroy();
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 100 Continue\r\n', 'HTTP/1.1 200 OK\r\n']);
    expect(conn.text()).toContain('/metadata 5');
  });
});

describe('Transfer-Encoding other than one "chunked" is refused before any byte reaches a provider', () => {
  test.each([
    ['identity, chunked', 'Transfer-Encoding: identity, chunked\r\n'],
    ['gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
    ['two lines, identity then chunked', 'Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n'],
    ['chunked listed after an empty element', 'Transfer-Encoding: , chunked\r\n'],
  ])('%s: 400, nothing forwarded, one record', async (_name, lines) => {
    const before = provider.connections;
    const req = head('/metadata', lines, 'POST');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n${chunkedBody(SMUGGLED)}`, 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MALFORMED_HTTP_REQUEST');
    expect(raw).toMatch(/\r\nConnection: close\r\n/);
    expect(provider.connections).toBe(before);
    expect(await oneRecord(req.traceId)).toMatchObject({ outcome: 'denied', status: 400 });
  });
});

describe('HTTP versions other than 1.0 and 1.1 are refused', () => {
  test.each([
    ['HTTP/0.9 with a version', '0.9'],
    ['HTTP/2.0 on an HTTP/1 connection', '2.0'],
  ])('%s: 400 MALFORMED_HTTP_REQUEST, one record, nothing forwarded', async (_name, version) => {
    const before = provider.connections;
    const req = head('/metadata', '', 'GET', version);
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n`, 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MALFORMED_HTTP_REQUEST');
    expect(provider.connections).toBe(before);
    expect(await oneRecord(req.traceId)).toMatchObject({ outcome: 'denied', status: 400, error_code: 'MALFORMED_HTTP_REQUEST' });
  });

  test('PRI * HTTP/2.0 (the h2 preface): 400 and closed, nothing forwarded', async () => {
    const before = provider.connections;
    const raw = await rawExchange(gw.proxyPort, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(provider.connections).toBe(before);
  });
});

describe('Header names that a provider stack may fold onto a checked header ("_" for "-")', () => {
  test.each([
    ['Ssp_From', 'Ssp_From: 999\r\n', 'Ssp-From'],
    ['ssp_interactionid', 'ssp_interactionid: urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1\r\n', 'Ssp-InteractionID'],
    ['Content_Length', 'Content_Length: 5\r\n', 'Content-Length'],
    ['Transfer_Encoding', 'Transfer_Encoding: chunked\r\n', 'Transfer-Encoding'],
    ['AUTHORIZATION with no underscore is just Authorization (control)', '', ''],
  ])('%s', async (_name, lines, named) => {
    const count = seen.length;
    const req = head('/metadata', `${lines}Connection: close\r\n`);
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n`, 2000);
    if (named === '') {
      expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
      await oneRecord(req.traceId); // and let its record land before the next test counts records
      return;
    }
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MISSING_OR_INVALID_HEADER');
    expect(raw).toContain(named);
    expect(seen.length).toBe(count);
    expect(await oneRecord(req.traceId)).toMatchObject({ outcome: 'denied', status: 400 });
  });
});

describe('Framing variants: refused by the parser with one record, or forwarded with the framing they arrived with', () => {
  type Case = [name: string, lines: string, rest: string];
  // Refused: nothing forwarded, one 400, the smuggled bytes never parsed as a request.
  const refused: Case[] = [
    ['CL.TE', `Content-Length: 4\r\nTransfer-Encoding: chunked\r\n`, chunkedBody(SMUGGLED)],
    ['TE.CL', `Transfer-Encoding: chunked\r\nContent-Length: ${SMUGGLED.length}\r\n`, chunkedBody(SMUGGLED)],
    ['TE: xchunked', 'Transfer-Encoding: xchunked\r\n', chunkedBody(SMUGGLED)],
    ['TE: chunked, identity', 'Transfer-Encoding: chunked, identity\r\n', chunkedBody(SMUGGLED)],
    ['two TE lines, chunked then identity', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n', chunkedBody(SMUGGLED)],
    ['two TE lines, both chunked', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', chunkedBody(SMUGGLED)],
    ['space before the colon', 'Transfer-Encoding : chunked\r\n', chunkedBody(SMUGGLED)],
    ['obs-fold value', 'Transfer-Encoding:\r\n chunked\r\n', chunkedBody(SMUGGLED)],
    ['obs-fold hiding a header', 'X-A: b\r\n Transfer-Encoding: chunked\r\n', chunkedBody(SMUGGLED)],
    ['Content-Length: 5, 5', 'Content-Length: 5, 5\r\n', 'hello' + SMUGGLED],
    ['two Content-Length lines', 'Content-Length: 5\r\nContent-Length: 5\r\n', 'hello' + SMUGGLED],
    ['Content-Length: +5', 'Content-Length: +5\r\n', 'hello' + SMUGGLED],
    ['Content-Length: -1', 'Content-Length: -1\r\n', SMUGGLED],
    ['Content-Length: 0x5', 'Content-Length: 0x5\r\n', 'hello' + SMUGGLED],
    ['Content-Length over 2^64', 'Content-Length: 99999999999999999999999\r\n', SMUGGLED],
    ['Content-Length with a tab name', 'Content-Length\t: 5\r\n', 'hello' + SMUGGLED],
    ['chunk-size overflow', 'Transfer-Encoding: chunked\r\n', `ffffffffffffffffff1\r\n${SMUGGLED}\r\n0\r\n\r\n`],
    ['chunk-size 0x prefix', 'Transfer-Encoding: chunked\r\n', `0x5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`],
    ['chunk without CRLF after data', 'Transfer-Encoding: chunked\r\n', `5\r\nhelloXX0\r\n\r\n${SMUGGLED}`],
    ['chunk lines with bare LF', 'Transfer-Encoding: chunked\r\n', `5\nhello\n0\n\n${SMUGGLED}`],
    ['chunk extension with a quoted CRLF', 'Transfer-Encoding: chunked\r\n', `5;a="x\r\n"\r\nhello\r\n0\r\n\r\n${SMUGGLED}`],
    ['trailer carrying Content-Length', 'Transfer-Encoding: chunked\r\n', `5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n${SMUGGLED}`],
    ['bare LF ending a header line', 'X-A: b\n', ''],
  ];
  test.each(refused)('%s: refused, nothing forwarded, one record', async (_name, lines, rest) => {
    const before = provider.connections;
    const count = seen.length;
    const records = transactionLines(gw.logFile).length;
    const req = head('/metadata', lines, 'POST');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n${rest}`, 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('MALFORMED_HTTP_REQUEST');
    expect(provider.connections).toBe(before);
    expect(seen.length).toBe(count);
    // A refusal by the parser before the handler has no trace ID: count the records instead.
    // Exactly one lands (the refusal), none for the smuggled bytes.
    await new Promise((r) => setTimeout(r, 700));
    const added = transactionLines(gw.logFile).slice(records);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ outcome: 'denied', status: 400, error_code: 'MALFORMED_HTTP_REQUEST' });
  });

  // Forwarded: the provider parses exactly one request per consumer request, the body intact.
  const forwarded: Case[] = [
    ['TE: chunked with trailing whitespace', 'Transfer-Encoding: chunked \r\n', chunkedBody(SMUGGLED)],
    ['TE: tab then chunked', 'Transfer-Encoding:\tchunked\r\n', chunkedBody(SMUGGLED)],
    ['TE: Chunked', 'Transfer-Encoding: Chunked\r\n', chunkedBody(SMUGGLED)],
    ['Content-Length: 05', `Content-Length: 0${SMUGGLED.length}\r\n`, SMUGGLED],
    ['Content-Length with trailing whitespace', `Content-Length: ${SMUGGLED.length} \r\n`, SMUGGLED],
    ['chunk extension', 'Transfer-Encoding: chunked\r\n', `${hex(SMUGGLED.length)};ext=1;q="a b"\r\n${SMUGGLED}\r\n0\r\n\r\n`],
    [
      'trailer carrying Ssp-From (trailers are not relayed)',
      'Transfer-Encoding: chunked\r\n',
      `${hex(SMUGGLED.length)}\r\n${SMUGGLED}\r\n0\r\nSsp-From: 999\r\nSsp-InteractionID: x\r\n\r\n`,
    ],
    ['Connection naming content-length;x (no such field)', `Connection: content-length;x\r\nContent-Length: ${SMUGGLED.length}\r\n`, SMUGGLED],
    ['Connection naming "content-length" quoted (no such field)', `Connection: "content-length"\r\nContent-Length: ${SMUGGLED.length}\r\n`, SMUGGLED],
    ['Proxy-Connection: content-length', `Proxy-Connection: content-length\r\nContent-Length: ${SMUGGLED.length}\r\n`, SMUGGLED],
    ['Keep-Alive: timeout=1, max=1', `Keep-Alive: timeout=1, max=1\r\nContent-Length: ${SMUGGLED.length}\r\n`, SMUGGLED],
    [
      'Connection: keep-alive, Keep-Alive, TE, Trailer',
      `Connection: keep-alive, Keep-Alive, TE, Trailer\r\nTE: trailers\r\nContent-Length: ${SMUGGLED.length}\r\n`,
      SMUGGLED,
    ],
  ];
  test.each(forwarded)('%s: one request at the provider, body intact, one record', async (_name, lines, rest) => {
    seen.length = 0;
    const req = head('/metadata', `${lines}Connection: close\r\n`, 'POST');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n${rest}`, 1500);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(paths()).toEqual(['POST /A20047/STU3/1/gpconnect/fhir/metadata']);
    expect(seen[0].body).toBe(SMUGGLED);
    expect(seen[0].rawHeaders.filter((h) => /^ssp-from$/i.test(h))).toHaveLength(1);
    expect(await oneRecord(req.traceId)).toMatchObject({ outcome: 'forwarded', status: 200 });
  });

  test.each([
    ['Connection: ,Content-Length', 'Connection: ,Content-Length\r\n'],
    ['1000 tokens then content-length', `Connection: ${'a,'.repeat(1000)}content-length\r\n`],
    ['empty tokens and tabs', 'Connection: ,,, ,\t,content-length,,\r\n'],
  ])('Connection variant %s: refused before any byte reaches a provider', async (_name, lines) => {
    const before = provider.connections;
    const req = head('/metadata', `${lines}Content-Length: ${SMUGGLED.length}\r\n`, 'POST');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n${SMUGGLED}`, 1500);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('CONNECTION_OPTION_NOT_ALLOWED');
    expect(provider.connections).toBe(before);
    await oneRecord(req.traceId);
  });
});

describe('Connection tokens with Latin-1 bytes: the check and the forwarder trim alike', () => {
  test('NBSP (0xA0) around content-length is trimmed by both: refused', async () => {
    const before = provider.connections;
    const req = head('/metadata', `Connection: \xa0content-length\xa0\r\nContent-Length: ${SMUGGLED.length}\r\n`, 'POST');
    const raw = await rawExchange(gw.proxyPort, Buffer.from(`${req.text}\r\n${SMUGGLED}`, 'latin1'), 1500);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(displayOf(raw)).toBe('CONNECTION_OPTION_NOT_ALLOWED');
    expect(provider.connections).toBe(before);
    await oneRecord(req.traceId);
  });

  test('NEL (0x85) after content-length is trimmed by neither: no field is dropped, the body keeps its length', async () => {
    seen.length = 0;
    const req = head('/metadata', `Connection: content-length\x85\r\nContent-Length: ${SMUGGLED.length}\r\nConnection: close\r\n`, 'POST');
    const raw = await rawExchange(gw.proxyPort, Buffer.from(`${req.text}\r\n${SMUGGLED}`, 'latin1'), 1500);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(seen.map((x) => x.body)).toEqual([SMUGGLED]);
    await oneRecord(req.traceId);
  });

  test('trailers past MAX_HEADER_BYTES after the handler took the request: 431, one record', async () => {
    const records = transactionLines(gw.logFile).length;
    const trailers = Array.from({ length: 3000 }, (_, i) => `X-T${i}: ${'v'.repeat(30)}\r\n`).join('');
    const req = head('/metadata', 'Transfer-Encoding: chunked\r\n', 'POST');
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n5\r\nhello\r\n0\r\n${trailers}\r\n`, 2000);
    expect(statusLines(raw).length).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 700));
    expect(transactionLines(gw.logFile).slice(records)).toHaveLength(1);
  });
});

describe('Pipelines and request-line forms', () => {
  test('good (body that looks like a request) + refused (body) + good: three answers in order, two forwarded, bodies intact', async () => {
    seen.length = 0;
    const a = head('/a', `Content-Length: ${SMUGGLED.length}\r\n`, 'POST');
    const b = head('/b', `Content-Length: ${SMUGGLED.length}\r\n`, 'POST');
    const bad = b.text.replace(/Ssp-From: \d+/, 'Ssp-From: x');
    const c = head('/c', 'Content-Length: 1\r\nConnection: close\r\n', 'POST');
    const raw = await rawExchange(gw.proxyPort, `${a.text}\r\n${SMUGGLED}${bad}\r\n${SMUGGLED}${c.text}\r\nx`, 2500);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n', 'HTTP/1.1 400 Bad Request\r\n', 'HTTP/1.1 200 OK\r\n']);
    expect(paths()).toEqual(['POST /A20047/STU3/1/gpconnect/fhir/a', 'POST /A20047/STU3/1/gpconnect/fhir/c']);
    expect(seen.map((s) => s.body)).toEqual([SMUGGLED, 'x']);
    await oneRecord(a.traceId);
    await oneRecord(b.traceId);
    await oneRecord(c.traceId);
  });

  test('Expect: 100-continue refused, then the body that looks like a request: never parsed as one', async () => {
    const before = provider.connections;
    const req = head('/metadata', `Expect: 100-continue\r\nContent-Length: ${SMUGGLED.length}\r\n`, 'POST');
    const bad = req.text.replace(/Ssp-To: \d+/, 'Ssp-To: x');
    const raw = await rawExchange(gw.proxyPort, `${bad}\r\n${SMUGGLED}`, 2000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(raw).not.toContain('100 Continue');
    expect(provider.connections).toBe(before);
    await oneRecord(req.traceId);
  });

  test('HEAD and GET with a Content-Length body, then a pipelined request: the body is never a request', async () => {
    seen.length = 0;
    const h1 = head('/h', `Content-Length: ${SMUGGLED.length}\r\n`, 'HEAD');
    const g1 = head('/g', `Content-Length: ${SMUGGLED.length}\r\n`, 'GET');
    const last = head('/last', 'Connection: close\r\n');
    const raw = await rawExchange(gw.proxyPort, `${h1.text}\r\n${SMUGGLED}${g1.text}\r\n${SMUGGLED}${last.text}\r\n`, 2500);
    expect(statusLines(raw)).toHaveLength(3);
    expect(paths()).toEqual(['HEAD /A20047/STU3/1/gpconnect/fhir/h', 'GET /A20047/STU3/1/gpconnect/fhir/g', 'GET /A20047/STU3/1/gpconnect/fhir/last']);
  });

  test.each([
    ['absolute-form', (p: string) => `GET ${p}/metadata HTTP/1.1`],
    ['absolute-form naming the gateway', (p: string) => `GET http://gateway.local/${p}/metadata HTTP/1.1`],
    ['asterisk-form', () => 'OPTIONS * HTTP/1.1'],
    ['asterisk-form GET', () => 'GET * HTTP/1.1'],
  ])('%s: refused, nothing forwarded, one record', async (_name, line) => {
    const before = provider.connections;
    const { traceId, lines } = sspLines();
    const raw = await rawExchange(gw.proxyPort, `${line(ROOT)}\r\nHost: gateway.local\r\nConnection: close\r\n${lines}\r\n`, 1500);
    expect(statusLines(raw)).toHaveLength(1);
    expect(statusLines(raw)[0]).toMatch(/^HTTP\/1\.1 40[05] /);
    expect(provider.connections).toBe(before);
    await oneRecord(traceId);
  });

  test('a pipelined head the gateway stops reading (its own one-at-a-time bound) is not timed out as slow', async () => {
    // A waits 1.5 s at the provider (> HEADERS_TIMEOUT_MS), B waits its turn, and C's head
    // arrives whole within 100 ms but split across two packets: the gateway has stopped
    // reading by then, so the head stays incomplete through no fault of the consumer.
    const a = head('/slow');
    const b = head('/b');
    const c = head('/c', 'Connection: close\r\n');
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    conn.write(`${a.text}\r\n${b.text}\r\n${c.text.slice(0, 40)}`);
    await new Promise((r) => setTimeout(r, 100));
    conn.write(`${c.text.slice(40)}\r\n`);
    await conn.closes(5000);
    conn.destroy();
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\n']);
    for (const r of [a, b, c]) expect(await oneRecord(r.traceId)).toMatchObject({ outcome: 'forwarded', status: 200 });
  }, 15_000);

  test('...but a head still incomplete once the gateway reads again gets 408 within HEADERS_TIMEOUT_MS of that', async () => {
    const a = head('/slow');
    const b = head('/b');
    const records = transactionLines(gw.logFile).length;
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    const started = Date.now();
    conn.write(`${a.text}\r\n${b.text}\r\nGET /${ROOT}/metadata HTTP/1.1\r\nHost: x\r\n`);
    expect(await conn.closes(5000)).toBe(true);
    conn.destroy();
    // 1.5 s at the provider, then 600 ms of header timeout (+ Node's checking interval).
    expect(Date.now() - started).toBeLessThan(4500);
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 408 Request Timeout\r\n']);
    await new Promise((r) => setTimeout(r, 700));
    const added = transactionLines(gw.logFile).slice(records);
    expect(added.map((r) => r.status).sort()).toEqual([200, 200, 408]);
  }, 15_000);

  test('a provider answers before the body is in: the rest of the body, then a request, is never read as a request', async () => {
    seen.length = 0;
    const req = head('/early', 'Content-Length: 10\r\n', 'POST');
    const next = head('/smuggled');
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    conn.write(`${req.text}\r\nhello`);
    await conn.until((t) => t.endsWith('early'), 2000);
    conn.write(`world${next.text}\r\n`);
    expect(await conn.closes(3000)).toBe(true);
    conn.destroy();
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(conn.text()).toMatch(/\r\nConnection: close\r\n/);
    expect(paths()).toEqual(['POST /A20047/STU3/1/gpconnect/fhir/early']);
    expect(await oneRecord(req.traceId)).toMatchObject({ outcome: 'forwarded', status: 200 });
    expect(await recordsFor(gw.logFile, byTrace(next.traceId), 0, 0)).toHaveLength(0);
  });

  test('HTTP/0.9 simple request (no version): refused, nothing forwarded', async () => {
    const before = provider.connections;
    const raw = await rawExchange(gw.proxyPort, `GET /${ROOT}/metadata\r\n\r\n`, 1500);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 400 Bad Request\r\n']);
    expect(provider.connections).toBe(before);
  });
});

describe('Slow consumers are bounded', () => {
  test('empty lines between requests do not hold a connection open past keep-alive + HEADERS_TIMEOUT_MS', async () => {
    // llhttp skips CRLFs between messages without starting one (so no header deadline runs),
    // and each resets Node's keep-alive inactivity timer: "\r\n" every 200 ms held the
    // connection, and a MAX_CONNECTIONS slot, for as long as the consumer liked.
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    conn.write(`${head('/metadata').text}\r\n`);
    await conn.until((t) => t.includes('/metadata 0'), 2000);
    const started = Date.now();
    const dribble = setInterval(() => {
      if (!conn.closed) conn.write('\r\n');
    }, 200);
    const closed = await conn.closes(10_000);
    clearInterval(dribble);
    conn.destroy();
    expect(closed).toBe(true);
    // Node's keep-alive timeout (5 s) + HEADERS_TIMEOUT_MS (600 ms), and slack for a busy machine.
    expect(Date.now() - started).toBeLessThan(8000);
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
  }, 15_000);

  test('control: a keep-alive consumer that sends its next request in time is served on the same connection', async () => {
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    conn.write(`${head('/one').text}\r\n`);
    await conn.until((t) => t.includes('/one 0'), 2000);
    await new Promise((r) => setTimeout(r, 3000));
    conn.write(`${head('/two').text}\r\n`);
    await conn.until((t) => t.includes('/two 0'), 2000);
    conn.destroy();
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\n']);
  }, 15_000);

  test('slowloris on the header block: 408 within HEADERS_TIMEOUT_MS (+ checking interval), one record', async () => {
    const conn = new RawConnection(gw.proxyPort);
    await conn.whenOpen;
    const req = head('/metadata');
    const started = Date.now();
    // One byte every 100 ms: never a complete header block.
    let i = 0;
    const dribble = setInterval(() => {
      if (i < req.text.length && !conn.closed) conn.write(req.text[i++]);
    }, 100);
    const closed = await conn.closes(3000);
    clearInterval(dribble);
    conn.destroy();
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 408 Request Timeout\r\n']);
    expect(displayOf(conn.text())).toBe('REQUEST_TIMEOUT');
  });
});

describe('Floods of tiny pipelined requests stall only the consumer that sends them', () => {
  test('three connections each pipeline 5 MiB of tiny requests and never read: the gateway stops reading them and still serves others', async () => {
    const flooders: RawConnection[] = [];
    const tiny = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
    const perConnection = 200_000; // 5.2 MB each
    const records = transactionLines(gw.logFile).length;
    for (let i = 0; i < 3; i++) {
      const conn = new RawConnection(gw.proxyPort);
      conn.socket.pause(); // never read a response
      await conn.whenOpen;
      conn.write(tiny.repeat(perConnection));
      flooders.push(conn);
    }
    await new Promise((r) => setTimeout(r, 1500));
    // Another consumer is served at once.
    const req = head('/metadata', 'Connection: close\r\n');
    const started = Date.now();
    const raw = await rawExchange(gw.proxyPort, `${req.text}\r\n`, 3000);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(Date.now() - started).toBeLessThan(3000);
    // Each flooder was answered only as far as its unread responses fill the socket buffers.
    await new Promise((r) => setTimeout(r, 600));
    const answered = transactionLines(gw.logFile).length - records;
    expect(answered).toBeLessThan((3 * perConnection) / 4);
    for (const conn of flooders) conn.destroy();
  }, 20_000);
});

describe('TLS port: handshakes that never finish hold a MAX_CONNECTIONS slot no longer than HEADERS_TIMEOUT_MS (1.5 s here)', () => {
  let tlsGw: RunningGateway;
  let clientTls: { ca: Buffer; cert: Buffer; key: Buffer };
  beforeAll(async () => {
    const ca = TestCa.create('Smuggling Test CA');
    const client = ca.issue('pharmacy.example.nhs.uk');
    const server = ca.issue('gateway.test', { usage: 'server', dns: ['localhost'] });
    clientTls = { ca: ca.pem, cert: client.certPem, key: client.keyPem };
    tlsGw = await startGateway(directoryYaml({ metadata: ROOT }), {
      TLS_CERT_FILE: server.cert,
      TLS_KEY_FILE: server.key,
      TLS_CLIENT_CA_FILE: ca.certFile,
      HEADERS_TIMEOUT_MS: '1500',
      MAX_CONNECTIONS: '2',
    });
  }, 60_000);
  afterAll(async () => {
    await tlsGw?.stop();
  });

  test('two silent TCP connections and a partial TLS record fill the cap, are closed after the timeout, and a real consumer is then served', async () => {
    const silent = connect(tlsGw.proxyPort, '127.0.0.1');
    const partial = connect(tlsGw.proxyPort, '127.0.0.1');
    const closedAt: number[] = [];
    const started = Date.now();
    for (const s of [silent, partial]) {
      s.on('error', () => {});
      s.on('close', () => closedAt.push(Date.now() - started));
    }
    await Promise.all([silent, partial].map((s) => new Promise((r) => s.once('connect', r))));
    partial.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00])); // a handshake record header announcing 16 KiB that never come
    await new Promise((r) => setTimeout(r, 100));
    // Over the cap: dropped at once.
    await expect(rawExchange(tlsGw.proxyPort, 'x', 1000, clientTls)).rejects.toBeDefined();
    await eventually(() => closedAt.length === 2, 5000, 'the stalled handshakes to be closed');
    expect(Math.max(...closedAt)).toBeLessThan(3500);
    const { lines } = sspLines();
    const raw = await rawExchange(tlsGw.proxyPort, `GET /${ROOT}/metadata HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n${lines}\r\n`, 2000, clientTls);
    expect(statusLines(raw)).toEqual(['HTTP/1.1 200 OK\r\n']);
  }, 15_000);

  test('plain HTTP on the TLS port reaches no provider', async () => {
    const before = provider.connections;
    const { lines } = sspLines();
    const raw = await rawExchange(tlsGw.proxyPort, `GET /${ROOT}/metadata HTTP/1.1\r\nHost: gw\r\n${lines}\r\n`, 1500).catch(() => '');
    expect(statusLines(raw)).toEqual([]);
    expect(provider.connections).toBe(before);
  });
});

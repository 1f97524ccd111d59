import { directoryYaml, startGateway, startProvider, type RunningGateway, type TestProvider } from '../helpers/test-kit';
import { searchUntil } from '../helpers/audit-kit';
import { RawConnection, displayOf, sspLines, statusLines } from '../helpers/raw-conn';

/**
 * The consumer connection's refusals with audit on (the real spool and embedded
 * ClickHouse): each leaves exactly one record, found through the audit search API, and a
 * request refused by the parser while its audit record was being made durable is never
 * forwarded afterwards.
 */
let provider: TestProvider;
let gw: RunningGateway;

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('ok');
  });
  gw = await startGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', AUDIT_BATCH_MAX_AGE_MS: '50', HEADERS_TIMEOUT_MS: '400' });
});
afterAll(async () => {
  await gw?.stop();
  await provider.close();
});

async function exchange(text: string): Promise<string> {
  const conn = new RawConnection(gw.proxyPort);
  await conn.whenOpen;
  conn.write(text);
  await conn.closes(3000);
  conn.destroy();
  return conn.text();
}

const head = (method: string, lines: string) => `${method} /${provider.root}/metadata HTTP/1.1\r\nHost: gw\r\n${lines}`;

test.each([
  ['Transfer-Encoding: xchunked', 'POST', 'Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 400, 'MALFORMED_HTTP_REQUEST'],
  ['a bad chunk mid-body', 'POST', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n', 400, 'MALFORMED_HTTP_REQUEST'],
  ['Connection: Content-Length', 'GET', 'Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello', 400, 'CONNECTION_OPTION_NOT_ALLOWED'],
  ['an upgrade', 'GET', 'Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 400, 'UPGRADE_NOT_SUPPORTED'],
  ['no Host', 'GET-NOHOST', 'Connection: close\r\n\r\n', 400, 'MISSING_OR_INVALID_HEADER'],
])('%s: one audit record, nothing forwarded', async (_name, method, rest, status, code) => {
  const seen = provider.requests.length;
  const { traceId, lines } = sspLines();
  const text = method === 'GET-NOHOST' ? `GET /${provider.root}/metadata HTTP/1.1\r\n${lines}${rest}` : `${head(method, lines)}${rest}`;
  const raw = await exchange(text);
  expect(statusLines(raw)).toHaveLength(1);
  expect(displayOf(raw)).toBe(code);
  const rows = await searchUntil(gw.adminPort, `trace_id=${traceId}`, (r) => r.length >= 1);
  await new Promise((r) => setTimeout(r, 500));
  const again = await searchUntil(gw.adminPort, `trace_id=${traceId}`, (r) => r.length >= 1);
  expect(again).toHaveLength(1);
  expect(rows[0]).toMatchObject({ outcome: 'denied', status, error_code: code, consumer_asid: '200000000359' });
  // The record counts the refusal's body, whichever path wrote it.
  expect(rows[0].response_bytes).toBe(Number(/\r\nContent-Length: (\d+)\r\n/.exec(raw)![1]));
  await new Promise((r) => setTimeout(r, 200));
  expect(provider.requests.length).toBe(seen);
});

test('a header timeout: one audit record with 408 REQUEST_TIMEOUT', async () => {
  const raw = await exchange(`GET /${provider.root}/metadata HTTP/1.1\r\nHost: gw\r\n`);
  expect(statusLines(raw)).toEqual(['HTTP/1.1 408 Request Timeout\r\n']);
  const rows = await searchUntil(gw.adminPort, 'status=408', (r) => r.some((row) => row.error_code === 'REQUEST_TIMEOUT'));
  expect(rows.find((row) => row.error_code === 'REQUEST_TIMEOUT')).toMatchObject({ outcome: 'denied', status: 408 });
});

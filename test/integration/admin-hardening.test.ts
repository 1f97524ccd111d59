import { readFileSync } from 'node:fs';
import {
  CONSUMER_ASID,
  PROVIDER_ASID,
  directoryYaml,
  okHandler,
  rawExchange,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  waitFor,
  type RunningGateway,
  type TestProvider,
  adminTokensFile,
} from '../helpers/test-kit';
import { getText } from '../helpers/metrics-kit';

/**
 * The audit search API with a real embedded ClickHouse (chDB) behind it.
 * Malformed cursors, trace-ID case, caching, the Bearer scheme's case, and finding the
 * record of a refusal whose trace ID was not a GUID.
 */
const AUDITOR_TOKEN = 'carol-6c1f0a9e3b';
const METRICS_TOKEN = 'scrape-0d4e2b7c91';

let provider: TestProvider;
let gw: RunningGateway;
let admin: string;
const auth = { Authorization: `Bearer ${AUDITOR_TOKEN}` };

beforeAll(async () => {
  provider = await startProvider(okHandler());
  const tokens = adminTokensFile([
    { name: 'carol', role: 'auditor', token: AUDITOR_TOKEN },
    { name: 'prom', role: 'metrics', token: METRICS_TOKEN },
  ]);
  gw = await startGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', ADMIN_TOKENS_FILE: tokens, AUDIT_BATCH_MAX_AGE_MS: '50' });
  admin = `http://127.0.0.1:${gw.adminPort}`;
  // Wait until the store answers searches (it is prepared in the background).
  for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    if ((await getText(`${admin}/audit/transactions?limit=1`, auth)).status === 200) break;
  }
});
afterAll(async () => {
  await gw.stop();
  await provider.close();
});

async function searchUntil(query: string, predicate: (rows: Array<Record<string, unknown>>) => boolean): Promise<Array<Record<string, unknown>>> {
  let rows: Array<Record<string, unknown>> = [];
  let last = '';
  for (const until = Date.now() + 15_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    const r = await getText(`${admin}/audit/transactions?${query}`, auth);
    last = `${r.status} ${r.text.slice(0, 300)}`;
    if (r.status === 200) {
      rows = JSON.parse(r.text).transactions;
      if (predicate(rows)) return rows;
    }
  }
  throw new Error(`search "${query}" never matched: last answer ${last}`);
}

function logLines(): Array<Record<string, unknown>> {
  gw.gateway.log.flush();
  return readFileSync(gw.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

describe('a malformed cursor', () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const UUID = '5f0c8a4e-0b1d-4c7e-9a55-0d3c1e2f4a6b';
  test.each([
    ['a time ClickHouse cannot parse', b64(['not-a-time-CANARY', UUID])],
    ['an impossible date', b64(['2026-13-45T99:99:99.000Z', UUID])],
    ['numbers instead of strings', b64([1, 2])],
    ['an object', b64({ at: 'x' })],
    ['three elements', b64(['2026-11-21T09:00:00.000Z', UUID, 'CANARY'])],
    ['an upper-case event id', b64(['2026-11-21T09:00:00.000Z', UUID.toUpperCase()])],
    ['not JSON', Buffer.from('CANARY-not-json').toString('base64url')],
    ['not base64url', 'CANARY!!'],
  ])('%s: 400 naming the cursor and what is valid, never 503, never an error line with its text', async (_name, cursor) => {
    const before = logLines().length;
    const r = await getText(`${admin}/audit/transactions?cursor=${encodeURIComponent(cursor)}`, auth);
    expect(r.status).toBe(400);
    const body = JSON.parse(r.text);
    expect(body).toMatchObject({ error: 'invalid filter', filter: 'cursor' });
    expect(body.message).toMatch(/next_cursor/);
    // Its access line (from the store process, over the channel) is in, so the check below covers every line of this request.
    await waitFor(
      () =>
        logLines()
          .slice(before)
          .some((l) => l.msg === 'audit access'),
      5000,
      'the access line',
      20,
    );
    const after = logLines().slice(before);
    expect(after.filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(JSON.stringify(after)).not.toContain('CANARY');
  });

  test('a real next_cursor still pages', async () => {
    for (let i = 0; i < 3; i++) expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    // Three rows in the store (not two: a second page needs a third), shipping being asynchronous.
    await searchUntil(`consumer_asid=${CONSUMER_ASID}&limit=3`, (rows) => rows.length === 3);
    // The page the cursor continues (records may still be arriving: an earlier search's rows need not be these).
    const page = JSON.parse((await getText(`${admin}/audit/transactions?consumer_asid=${CONSUMER_ASID}&limit=2`, auth)).text);
    const first = page.transactions as Array<Record<string, unknown>>;
    expect(first).toHaveLength(2);
    expect(page.next_cursor).toEqual(expect.any(String));
    const next = await getText(`${admin}/audit/transactions?consumer_asid=${CONSUMER_ASID}&limit=2&cursor=${page.next_cursor}`, auth);
    expect(next.status).toBe(200);
    const ids = JSON.parse(next.text).transactions.map((r: Record<string, unknown>) => r.event_id);
    expect(ids.length).toBeGreaterThan(0);
    for (const r of first) expect(ids).not.toContain(r.event_id);
  });
});

describe('trace ID search ignores case', () => {
  test('an upper-case Ssp-TraceID is found by its lower-case form, and the reverse', async () => {
    const upper = 'A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D';
    const lower = '0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d';
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': upper }) })).status).toBe(200);
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': lower }) })).status).toBe(200);
    const a = await searchUntil(`trace_id=${upper.toLowerCase()}`, (rows) => rows.length === 1);
    expect(String(a[0].trace_id).toLowerCase()).toBe(upper.toLowerCase());
    const b = await searchUntil(`trace_id=${lower.toUpperCase()}`, (rows) => rows.length === 1);
    expect(b[0].trace_id).toBe(lower);
    const c = await searchUntil(`trace_id=${upper}`, (rows) => rows.length === 1); // as sent still works
    expect(c[0].event_id).toBe(a[0].event_id);
  });
});

describe('Cache-Control: no-store on every /audit/* response', () => {
  test.each([
    ['200', `/audit/transactions?limit=1`, auth, 200],
    ['400 (bad filter)', `/audit/transactions?limit=0`, auth, 400],
    ['400 (unknown parameter)', `/audit/transactions?nope=1`, auth, 400],
    ['400 (bad cursor)', `/audit/transactions?cursor=zz`, auth, 400],
    ['401 (no token)', `/audit/transactions`, {}, 401],
    ['401 (unknown token)', `/audit/transactions`, { Authorization: 'Bearer nope' }, 401],
    ['403 (metrics token)', `/audit/transactions`, { Authorization: `Bearer ${METRICS_TOKEN}` }, 403],
    ['404 (unknown audit path)', `/audit/other`, auth, 404],
  ])('%s', async (_name, path, headers, status) => {
    const r = await send(`${admin}${path}`, { headers });
    expect(r.status).toBe(status);
    expect(r.headers['cache-control']).toBe('no-store');
  });
});

describe('the Bearer scheme is case-insensitive (RFC 9110 11.1)', () => {
  test.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('%s <token>', async (scheme) => {
    const r = await getText(`${admin}/audit/transactions?limit=1`, { Authorization: `${scheme} ${AUDITOR_TOKEN}` });
    expect(r.status).toBe(200);
  });
  test('the token itself stays case-sensitive', async () => {
    expect((await getText(`${admin}/audit/transactions?limit=1`, { Authorization: `Bearer ${AUDITOR_TOKEN.toUpperCase()}` })).status).toBe(401);
    expect((await getText(`${admin}/audit/transactions?limit=1`, { Authorization: `Basic ${AUDITOR_TOKEN}` })).status).toBe(401);
  });
});

describe('refusals an investigator must be able to find', () => {
  test('a request whose Ssp-TraceID is not a GUID: found by consumer ASID, time and error_code', async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    const r = await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': 'not-a-guid-CANARY' }) });
    expect(r.status).toBe(400);
    const rows = await searchUntil(
      `consumer_asid=${CONSUMER_ASID}&provider_asid=${PROVIDER_ASID}&from=${encodeURIComponent(from)}&error_code=MISSING_OR_INVALID_HEADER`,
      (rs) => rs.length === 1,
    );
    expect(rows[0]).toMatchObject({
      error_code: 'MISSING_OR_INVALID_HEADER',
      status: 400,
      outcome: 'denied',
      consumer_asid: CONSUMER_ASID,
      provider_asid: PROVIDER_ASID,
      trace_id: '',
    });
    expect(JSON.stringify(rows)).not.toContain('CANARY'); // a malformed header may hold anything: never stored
  });

  test('an ambiguous path: found by error_code AMBIGUOUS_PATH', async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    const raw = await rawExchange(
      gw.proxyPort,
      `GET /${provider.root}/..;/structured/fhir/metadata HTTP/1.1\r\nHost: g\r\n${Object.entries(sspHeaders())
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')}Connection: close\r\n\r\n`,
    );
    expect(raw.slice(9, 12)).toBe('400');
    const rows = await searchUntil(`error_code=AMBIGUOUS_PATH&from=${encodeURIComponent(from)}`, (rs) => rs.length === 1);
    expect(rows[0]).toMatchObject({ error_code: 'AMBIGUOUS_PATH', consumer_asid: CONSUMER_ASID, endpoint: '' });
  });

  test('error_code is validated like the other filters', async () => {
    const r = await getText(`${admin}/audit/transactions?error_code=x'%20OR%201=1`, auth);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toMatchObject({ filter: 'error_code' });
  });
});

/**
 * Second pass (attacking the item 8 fix), over raw sockets so that no client library
 * tidies the bytes: the Bearer header's edge cases, cursor and filter fuzzing against the
 * real embedded ClickHouse, and Cache-Control on every /audit answer.
 */
interface RawReply {
  status: number;
  headers: string;
  body: string;
}

async function adminRaw(target: string, headerLines: string[] = [], method = 'GET'): Promise<RawReply> {
  const bytes = Buffer.concat([
    Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: admin\r\n`, 'latin1'),
    ...headerLines.map((l) => Buffer.concat([Buffer.from(l, 'latin1'), Buffer.from('\r\n')])),
    Buffer.from('Connection: close\r\n\r\n'),
  ]);
  const raw = await rawExchange(gw.adminPort, bytes, 5000);
  const cut = raw.indexOf('\r\n\r\n');
  return { status: Number(raw.slice(9, 12)), headers: raw.slice(0, cut), body: raw.slice(cut + 4) };
}

describe('second pass: the Authorization header, byte by byte', () => {
  const T = AUDITOR_TOKEN;
  test.each<[string, string[], number]>([
    ['two spaces after Bearer (1*SP)', [`Authorization: Bearer  ${T}`], 200],
    ['trailing spaces (OWS, trimmed by the parser)', [`Authorization: Bearer ${T}   `], 200],
    ['a tab after Bearer', [`Authorization: Bearer\t${T}`], 401],
    ['a tab after the token', [`Authorization: Bearer ${T}\t`], 200], // OWS too
    ['Bearer and no token', ['Authorization: Bearer'], 401],
    ['Bearer, a space, no token', ['Authorization: Bearer '], 401],
    ['no scheme', [`Authorization: ${T}`], 401],
    ['Bearer= instead of a space', [`Authorization: Bearer=${T}`], 401],
    ['a comma and a second credential', [`Authorization: Bearer ${T}, Bearer x`], 401],
    ['the token twice', [`Authorization: Bearer ${T} ${T}`], 401],
    ['a leading space in the value', [`Authorization:  Bearer ${T}`], 200], // OWS before the value
    ['an empty Authorization', ['Authorization: '], 401],
    ['the token with a non-ASCII byte appended (latin1)', [`Authorization: Bearer ${T}\xe9`], 401],
    ['the token in UTF-8 look-alike letters', [`Authorization: Bearer ${Buffer.from(T.replace('a', 'а'), 'utf8').toString('latin1')}`], 401],
    ['a 513-character token', [`Authorization: Bearer ${'a'.repeat(513)}`], 401],
    ['a 12 KiB token', [`Authorization: Bearer ${'a'.repeat(12_288)}`], 401],
    ['the token in a Proxy-Authorization header', [`Proxy-Authorization: Bearer ${T}`], 401],
    ['the token in a query parameter', [], 401],
  ])('%s', async (name, lines, status) => {
    const target = name.includes('query parameter') ? `/audit/transactions?limit=1&access_token=${T}` : '/audit/transactions?limit=1';
    const r = await adminRaw(target, lines);
    expect(r.status).toBe(status);
    expect(r.headers).toMatch(/\r\ncache-control: no-store/i);
    if (status === 401) expect(r.headers).toMatch(/\r\nwww-authenticate: Bearer/i);
  });

  test('a header block over the admin limit (a 20 KiB token): refused, the admin port still answers', async () => {
    const r = await adminRaw('/audit/transactions?limit=1', [`Authorization: Bearer ${'a'.repeat(20_480)}`]);
    expect(r.status).toBe(431);
    expect((await adminRaw('/healthz')).status).toBe(200);
  });

  test.each<[string, string[]]>([
    ['a valid token, then an unknown one', [`Authorization: Bearer ${AUDITOR_TOKEN}`, 'Authorization: Bearer nope']],
    ['an unknown token, then a valid one', ['Authorization: Bearer nope', `Authorization: Bearer ${AUDITOR_TOKEN}`]],
    ['a valid token twice', [`Authorization: Bearer ${AUDITOR_TOKEN}`, `Authorization: Bearer ${AUDITOR_TOKEN}`]],
    ['an auditor token and a metrics token', [`Authorization: Bearer ${METRICS_TOKEN}`, `authorization: Bearer ${AUDITOR_TOKEN}`]],
  ])('two Authorization headers (%s): 401, whichever comes first', async (_name, lines) => {
    const r = await adminRaw('/audit/transactions?limit=1', lines);
    expect(r.status).toBe(401);
    expect(r.headers).toMatch(/\r\ncache-control: no-store/i);
    expect(r.body).toMatch(/one Authorization header/);
  });
});

describe('second pass: cursor and filter fuzzing against the real store', () => {
  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const UUID = '5f0c8a4e-0b1d-4c7e-9a55-0d3c1e2f4a6b';
  const search = (query: string) => adminRaw(`/audit/transactions?${query}`, [`Authorization: Bearer ${AUDITOR_TOKEN}`]);

  test('200 random cursors (seeded): each a 400 naming cursor, no error line, never the store', async () => {
    let seed = 0x9e3779b9;
    const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    // Access lines of the tests before this one may still be on their way from the store
    // process: mark the log once it has stayed the same length for 300 ms.
    let seen = -1;
    let quietSince = Date.now();
    for (const until = Date.now() + 5000; Date.now() < until && Date.now() - quietSince < 300;) {
      const now = logLines().length;
      if (now !== seen) [seen, quietSince] = [now, Date.now()];
      await new Promise((r) => setTimeout(r, 50));
    }
    const before = logLines().length;
    for (let i = 0; i < 200; i++) {
      const bytes = Buffer.from(Array.from({ length: 1 + (i % 140) }, next));
      const r = await search(`cursor=${bytes.toString('base64url')}`);
      expect([i, r.status]).toEqual([i, 400]);
      expect(JSON.parse(r.body)).toMatchObject({ filter: 'cursor' });
    }
    // The store process's access lines reach this log over its channel, just after each answer.
    await waitFor(
      () =>
        logLines()
          .slice(before)
          .filter((l) => l.msg === 'audit access').length >= 200,
      5000,
      'the 200 access lines',
      50,
    );
    const after = logLines().slice(before);
    expect(after.filter((l) => (l.level as number) >= 50)).toEqual([]);
    // Refused before the store is asked: each use is one access line, a 400 naming only the parameter.
    const uses = after.filter((l) => l.msg === 'audit access');
    expect(uses).toHaveLength(200);
    expect(uses.every((l) => l.status === 400 && JSON.stringify(l.filters) === '{"invalid":"cursor"}')).toBe(true);
  });

  test.each<[string, string]>([
    ['extra keys in an object', b64({ 0: '2026-11-21T09:00:00.000Z', 1: UUID, length: 2 })],
    ['__proto__ as the cursor', b64('{"__proto__":{"polluted":1}}')],
    ['__proto__ inside the array', b64(`["2026-11-21T09:00:00.000Z","${UUID}",{"__proto__":{"polluted":1}}]`)],
    ['constructor.prototype', b64('{"constructor":{"prototype":{"polluted":1}}}')],
    ['a negative number', b64([-1, UUID])],
    ['a huge number', b64([1e308, UUID])],
    ['nested arrays', b64([['2026-11-21T09:00:00.000Z'], [UUID]])],
    ['null', b64([null, null])],
    ['a time with an offset', b64(['2026-11-21T09:00:00.000+01:00', UUID])],
    ['a time without milliseconds', b64(['2026-11-21T09:00:00Z', UUID])],
    ['a UUID with a quote', b64(['2026-11-21T09:00:00.000Z', `${UUID.slice(0, -1)}'`])],
    ['a nil UUID in braces', b64(['2026-11-21T09:00:00.000Z', `{${UUID}}`])],
    ['a base64 with padding', `${b64(['2026-11-21T09:00:00.000Z', UUID])}==`],
    ['standard base64 (+ and /)', Buffer.from(JSON.stringify(['2026-11-21T09:00:00.000Z', UUID]) + '\u00ff\u00fe').toString('base64')],
    ['201 characters', 'A'.repeat(201)],
  ])('a cursor with %s: 400', async (_name, cursor) => {
    const r = await search(`cursor=${encodeURIComponent(cursor)}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ filter: 'cursor' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  // Valid by the API's rules: the store must answer (200), never 503 for a value the API let through.
  test.each<[string, string]>([
    ['a cursor at year 0000', b64(['0000-01-01T00:00:00.000Z', UUID])],
    ['a cursor at year 9999', b64(['9999-12-31T23:59:59.999Z', UUID])],
    ['a cursor at 1899', b64(['1899-12-31T23:59:59.999Z', UUID])],
    ['a cursor at 2300', b64(['2300-01-01T00:00:00.000Z', UUID])],
    ['a cursor at the Unix epoch', b64(['1970-01-01T00:00:00.000Z', UUID])],
    ['a nil event id', b64(['2026-11-21T09:00:00.000Z', '00000000-0000-0000-0000-000000000000'])],
  ])('%s: 200 or 400, never 503', async (_name, cursor) => {
    const r = await search(`cursor=${cursor}`);
    expect([200, 400]).toContain(r.status);
  });

  test.each<[string, string]>([
    ['from at year 0001', 'from=0001-01-01T00:00:00Z'],
    ['from at year 9999', 'from=9999-12-31T23:59:59Z'],
    ['to at year 0000', 'to=0000-01-01T00:00:00Z'],
    ['from before 1900', 'from=1899-12-31T23:59:59Z'],
    ['to after 2299', 'to=2300-01-01T00:00:00Z'],
    ['nanoseconds', 'from=2026-11-21T09:00:00.123456789Z'],
    ['an offset of +23:59', `from=${encodeURIComponent('2026-11-21T09:00:00+23:59')}`],
    ['an offset of -12:00', 'from=2026-11-21T09:00:00-12:00'],
    ['February 29th in a leap year', 'from=2028-02-29T00:00:00Z'],
    ['February 29th in another year', 'from=2026-02-29T00:00:00Z'],
    ['a 24:00 time', 'from=2026-11-21T24:00:00Z'],
    ['a leap second', 'from=2026-12-31T23:59:60Z'],
    ['a date only', 'from=2026-11-21'],
    ['a Unix time', 'from=1763715600'],
    ['lower-case t and z', 'from=2026-11-21t09:00:00z'],
  ])('%s: 200 or a 400 naming it, never 503', async (_name, query) => {
    const r = await search(query);
    expect([200, 400]).toContain(r.status);
    if (r.status === 400) expect(JSON.parse(r.body).filter).toMatch(/^(from|to)$/);
  });

  test.each<[string, string]>([
    ['a quote and OR', `interaction_id=${encodeURIComponent("urn:x:x'OR'1'='1")}`],
    ['a comment', `interaction_id=${encodeURIComponent("urn:x:x'--")}`],
    ['a statement', `interaction_id=${encodeURIComponent("urn:x:');DROP/**/TABLE/**/transactions;--")}`],
    ['a placeholder', `interaction_id=${encodeURIComponent('urn:x:{limit:UInt32}')}`],
    ['the TSV null marker', `interaction_id=${encodeURIComponent('urn:x:\\N')}`],
    ['a backslash-escaped quote', `interaction_id=${encodeURIComponent("urn:x:\\'")}`],
    ['a function call', `interaction_id=${encodeURIComponent("urn:x:x')||file('/etc/passwd')||('")}`],
    ['a table function', `interaction_id=${encodeURIComponent('urn:x:url(http://127.0.0.1:1/)')}`],
    ['an interaction URN with SQL in it', `interaction_id=${encodeURIComponent("urn:x:y')OR(1=1")}`],
    ['a settings clause', `interaction_id=${encodeURIComponent("urn:x:x'/**/SETTINGS/**/max_threads=1--")}`],
  ])('%s: bound as a value (200, no rows), the table intact (interaction_id: the one filter that takes quotes)', async (_name, query) => {
    const r = await search(query);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).transactions).toEqual([]);
  });

  test.each<[string, string, string]>([
    ['status with SQL', `status=${encodeURIComponent('200 OR 1=1')}`, 'status'],
    ['a negative status', 'status=-1', 'status'],
    ['a negative limit', 'limit=-1', 'limit'],
    ['a huge limit', 'limit=99999999999999999999', 'limit'],
    ['a fractional limit', 'limit=1.5', 'limit'],
    ['consumer_asid with SQL', `consumer_asid=${encodeURIComponent("1' OR 1=1")}`, 'consumer_asid'],
    ['a trace_id with a control character', 'trace_id=a%0Ab', 'trace_id'],
    ['a trace_id with a space', 'trace_id=a%20b', 'trace_id'],
    ['a 65-character trace_id', `trace_id=${'a'.repeat(65)}`, 'trace_id'],
    ['trace_id twice', 'trace_id=a&trace_id=b', 'trace_id'],
    ['a trace_id with SQL in it (not a GUID)', `trace_id=${encodeURIComponent("x'OR'1'='1")}`, 'trace_id'],
    ['cursor twice', `cursor=a&cursor=b`, 'cursor'],
    ['an outcome not in the list', `outcome=${encodeURIComponent("ok' OR 1")}`, 'outcome'],
    ['__proto__ as a parameter', '__proto__=x', '__proto__'],
    ['constructor as a parameter', 'constructor=x', 'constructor'],
    ['toString as a parameter', 'toString=x', 'toString'],
    ['a bracketed parameter', 'trace_id[x]=1', ''],
  ])('%s: 400', async (_name, query, filter) => {
    const r = await search(query);
    expect(r.status).toBe(400);
    expect(r.headers).toMatch(/\r\ncache-control: no-store/i);
    if (filter) expect(JSON.stringify(JSON.parse(r.body))).toContain(filter);
  });

  test("dates outside DateTime64's range (1900-2299) clamp, never drop rows: from=0001 and to=9999 find what an open search finds", async () => {
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    const all = await searchUntil(`consumer_asid=${CONSUMER_ASID}&limit=1000`, (rs) => rs.length > 0);
    const ids = (rows: Array<Record<string, unknown>>) => rows.map((r) => r.event_id).sort();
    for (const range of [
      'from=0001-01-01T00:00:00Z',
      'from=1899-12-31T23:59:59Z',
      'to=9999-12-31T23:59:59Z',
      'to=2300-01-01T00:00:00Z',
      'from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z',
    ]) {
      const r = await search(`consumer_asid=${CONSUMER_ASID}&limit=1000&${range}`);
      expect([range, r.status]).toEqual([range, 200]);
      expect(ids(JSON.parse(r.body).transactions)).toEqual(expect.arrayContaining(ids(all))); // rows may only have been added since
    }
  });

  test('after all of that the table still answers with its rows', async () => {
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    const rows = await searchUntil(`consumer_asid=${CONSUMER_ASID}&limit=1`, (rs) => rs.length === 1);
    expect(rows[0].consumer_asid).toBe(CONSUMER_ASID);
  });
});

describe('second pass: Cache-Control: no-store on every /audit path, method and answer', () => {
  const A = `Authorization: Bearer ${AUDITOR_TOKEN}`;
  test.each<[string, string, string, string[], number | null]>([
    ['HEAD, authorised', 'HEAD', '/audit/transactions?limit=1', [A], 200],
    ['HEAD, no token', 'HEAD', '/audit/transactions', [], 401],
    ['HEAD, unknown /audit path', 'HEAD', '/audit/nothing', [A], 404],
    ['POST', 'POST', '/audit/transactions', [A, 'Content-Length: 0'], 404],
    ['DELETE', 'DELETE', '/audit/transactions', [A], 404],
    ['OPTIONS', 'OPTIONS', '/audit/transactions', [A], null],
    ['upper-case path (Express matches it)', 'GET', '/AUDIT/TRANSACTIONS?limit=1', [A], 200],
    ['a trailing slash', 'GET', '/audit/transactions/?limit=1', [A], 200],
    ['/audit itself', 'GET', '/audit', [A], 404],
    ['/audit/', 'GET', '/audit/', [A], 404],
    ['an encoded letter', 'GET', '/audit/transaction%73?limit=1', [A], null],
    ['a broken escape', 'GET', '/audit/%zz', [A], null],
    ['a dot-segment', 'GET', '/audit/x/../transactions?limit=1', [A], null],
    ['a ;parameter', 'GET', '/audit/transactions;x?limit=1', [A], null],
    ['a deep unknown path', 'GET', `/audit/${'a/'.repeat(200)}`, [A], 404],
  ])('%s', async (_name, method, target, lines, status) => {
    const r = await adminRaw(target, lines, method);
    if (status !== null) expect(r.status).toBe(status);
    expect(r.headers).toMatch(/\r\ncache-control: no-store/i);
    if (r.status === 200 && method === 'GET') expect(JSON.parse(r.body)).toHaveProperty('transactions');
  });

  test('no path outside /audit answers with audit rows', async () => {
    for (const target of [
      '//audit/transactions?limit=1',
      '/%61udit/transactions?limit=1',
      '/./audit/transactions?limit=1',
      '/metrics/../audit/transactions?limit=1',
    ]) {
      const r = await adminRaw(target, [A]);
      expect([target, r.status === 200 && r.body.includes('"transactions"') && !/cache-control: no-store/i.test(r.headers)]).toEqual([target, false]);
    }
  });
});

/**
 * Second pass, the open admin port (no ADMIN_TOKENS_FILE) and DNS rebinding: the port is
 * kept on loopback so that only this machine can ask, but a browser on this machine asks
 * for any web page it opens. A page whose name the attacker re-points at 127.0.0.1 is
 * same-origin with the admin port as far as the browser knows, and could read /metrics
 * and /audit/* (CORS does not apply). It always sends its own name in Host, so without
 * tokens /metrics and /audit/* answer only a loopback Host; /healthz and /readyz stay open.
 */
describe('second pass: an open admin port answers only a loopback Host (DNS rebinding)', () => {
  let open: RunningGateway;
  beforeAll(async () => {
    open = await startGateway(directoryYaml({ metadata: provider.root }));
  });
  afterAll(async () => {
    await open.stop();
  });
  const ask = async (target: string, host: string | null) => {
    const raw = await rawExchange(open.adminPort, `GET ${target} HTTP/1.1\r\n${host === null ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`);
    return Number(raw.slice(9, 12));
  };

  test.each([
    'rebind.attacker.example',
    'rebind.attacker.example:9090',
    '127.0.0.1.nip.io',
    'localhost.attacker.example',
    '10.0.0.5',
    '[::ffff:10.0.0.5]:80',
    'attacker.example@127.0.0.1',
  ])('Host: %s → 403 on /metrics, /healthz still 200', async (host) => {
    expect(await ask('/metrics', host)).toBe(403);
    expect(await ask('/healthz', host)).toBe(200);
  });

  test.each(['127.0.0.1', `127.0.0.1:PORT`, 'localhost', 'LOCALHOST:PORT', '[::1]:PORT', '127.0.0.2:PORT'])('Host: %s → 200 on /metrics', async (host) => {
    expect(await ask('/metrics', host.replace('PORT', String(open.adminPort)))).toBe(200);
  });

  test('with tokens the Host is not checked: the token is the guard', async () => {
    const r = await adminRaw('/metrics', [`Authorization: Bearer ${METRICS_TOKEN}`]);
    expect(r.status).toBe(200);
    const raw = await rawExchange(
      gw.adminPort,
      `GET /metrics HTTP/1.1\r\nHost: rebind.attacker.example\r\nAuthorization: Bearer ${METRICS_TOKEN}\r\nConnection: close\r\n\r\n`,
    );
    expect(raw.slice(9, 12)).toBe('200');
  });
});

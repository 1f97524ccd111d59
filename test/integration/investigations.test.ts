/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers, read by shape in the assertions */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  directoryYaml,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  waitFor,
  type RunningGateway,
  type TestProvider,
  adminTokensFile,
} from '../helpers/test-kit';
import { stringify } from 'csv-stringify/sync';
import { CSV_LIST_SEPARATOR, EXPORT_COLUMNS, EXPORT_KINDS, type AuditStore, type KeysetPosition } from '../../src/clickhouse';
import { streamExport } from '../../src/investigate/audit-export';
import { CSV_HEADER, countLines, lastKey, pageSlice } from '../../src/investigate/export-encoders';
import { schemaReady } from '../helpers/audit-kit';
import { INTERACTION_FINDING_CODES, JWT_RULE_CODES } from '../../src/check';

/**
 * The investigations API (README "Investigations") on a real gateway with the real
 * embedded engine: filters, summary, export, the access log and auditor SQL. Rows are
 * written straight into the store, in their own past time windows, so every count is exact.
 */
const AUDITOR = 'alice-5b7e22c4d1';
const METRICS = 'scrape-9f1c0d2e7a';
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
const alice = bearer(AUDITOR);

let provider: TestProvider;
let gw: RunningGateway;
let store: AuditStore;
let admin: string;

const BULK = 45_000;
const EXPORT_MAX = 40_000;

/** Runs a statement on the store (test set-up and fault injection only). */
const command = (query: string) => (store as unknown as { client: { command(p: { query: string }): Promise<unknown> } }).client.command({ query });

function row(over: Record<string, string | number | string[]>): Record<string, string | number | string[]> {
  return {
    event_id: randomUUID(),
    version: 2,
    trace_id: randomUUID(),
    received_at: '2026-10-01T10:00:00.000Z',
    completed_at: '2026-10-01T10:00:00.050Z',
    duration_ms: 50,
    consumer_asid: '200000000359',
    consumer_ods: 'FA565',
    provider_asid: '918999198993',
    provider_ods: 'A20047',
    interaction_id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
    method: 'GET',
    status: 200,
    outcome: 'forwarded',
    error_code: '',
    environment: 'live',
    jwt_requesting_organization: 'FA565',
    ...over,
  };
}

// The October window: 8 rows with known facts.
const OCT = 'from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z';
// Findings as the checks write them (codes of src/check): rows 0 and 4 broke JWT rules, rows 4 and 6 did not fit their interaction.
const october = [
  row({ received_at: '2026-10-01T10:00:00.000Z', jwt_findings: ['JWT_EXPIRED', 'JWT_SUB_MISMATCH'] }),
  row({ received_at: '2026-10-01T10:05:00.000Z' }),
  row({ received_at: '2026-10-01T10:10:00.000Z', provider_asid: '918999198994', provider_ods: 'B82001' }),
  row({ received_at: '2026-10-01T11:00:00.000Z', consumer_asid: '200000000360', consumer_ods: 'Y12345', jwt_requesting_organization: 'Y12345' }),
  row({
    received_at: '2026-10-01T11:01:00.000Z',
    outcome: 'denied',
    status: 403,
    error_code: 'FOT_CHECK_FAILED',
    environment: 'test',
    jwt_findings: ['JWT_EXPIRED'],
    interaction_findings: ['INTERACTION_METHOD'],
  }),
  row({ received_at: '2026-10-01T11:02:00.000Z', outcome: 'upstream_error', status: 502, error_code: 'ERROR_COMMUNICATING_TO_ENDPOINT' }),
  row({
    received_at: '2026-10-01T11:03:00.000Z',
    outcome: 'upstream_timeout',
    status: 504,
    error_code: 'UPSTREAM_TIMEOUT',
    environment: 'test',
    interaction_findings: ['INTERACTION_PATH'],
  }),
  row({ received_at: '2026-10-01T12:00:00.000Z', outcome: 'client_aborted', status: 200, jwt_practitioner_role: '=HYPERLINK("http://x","y")' }),
];

async function get(
  path: string,
  headers: Record<string, string> = alice,
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown>; json: () => any }> {
  const r = await send(`${admin}${path}`, { headers });
  if (r.status === 503) {
    // Say why the store did not answer (seen once, with the whole suite running on a loaded machine).
    gw.gateway.log.flush();
    const errors = readFileSync(gw.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"level":50'))
      .slice(-5);
    throw new Error(`${path}: 503; the gateway's last error lines:\n${errors.join('\n')}`);
  }
  return { status: r.status, body: r.body, headers: r.headers, json: () => JSON.parse(r.body.toString()) };
}
const sql = async (text: unknown, headers: Record<string, string> = alice) => {
  const r = await send(`${admin}/audit/sql`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ sql: text }),
  });
  return { status: r.status, json: JSON.parse(r.body.toString()) };
};

/** Access-log entries (from the store), newest first, until `predicate` holds; without the reads of the access log itself. */
async function accessUntil(query: string, predicate: (e: any[]) => boolean, ms = 10_000): Promise<any[]> {
  let entries: any[] = [];
  await waitFor(
    async () => {
      const r = await get(`/audit/access-log?${query}`);
      entries = r.status === 200 ? r.json().entries.filter((e: any) => e.action !== 'access_log') : [];
      return predicate(entries);
    },
    ms,
    `access log ${query}`,
    100,
  );
  return entries;
}

beforeAll(async () => {
  provider = await startProvider(okHandler());
  const tokens = adminTokensFile([
    { name: 'prometheus', role: 'metrics', token: METRICS },
    { name: 'alice', role: 'auditor', token: AUDITOR },
  ]);
  gw = await startGateway(
    directoryYaml({ metadata: provider.root }),
    {
      AUDIT_ENABLED: 'true',
      AUDIT_BATCH_MAX_AGE_MS: '50',
      ADMIN_TOKENS_FILE: tokens,
      AUDIT_EXPORT_MAX_ROWS: String(EXPORT_MAX),
      AUDIT_SQL_MAX_ROWS: '5',
      AUDIT_SQL_TIMEOUT_MS: '500',
    },
    { store: 'inline' },
  );
  admin = `http://127.0.0.1:${gw.adminPort}`;
  store = gw.gateway.audit!.store!;
  await schemaReady(store);
  await store.insertLines(october.map((r) => JSON.stringify(r)).join('\n'));
  // September: BULK rows, three to a millisecond (ties across page boundaries), consumer_ods BULK1.
  await command(`INSERT INTO ${store.table} (event_id, version, trace_id, received_at, completed_at, duration_ms, consumer_asid, consumer_ods,
      provider_asid, provider_ods, interaction_id, method, status, outcome, environment, jwt_requesting_organization)
    SELECT generateUUIDv4(number), 2, toString(generateUUIDv4(number + ${BULK})),
      toDateTime64('2026-09-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(intDiv(number, 3) * 7),
      toDateTime64('2026-09-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(intDiv(number, 3) * 7 + 5), 5,
      '200000000359', 'BULK1', '918999198993', 'A20047', 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1', 'GET', 200,
      'forwarded', 'bulk', 'BULK1' FROM numbers(${BULK})`);
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await provider?.close();
});

describe('filters', () => {
  test.each<[string, number]>([
    ['consumer_ods=Y12345', 1],
    ['provider_ods=B82001', 1],
    ['jwt_requesting_organization=Y12345', 1],
    ['environment=test', 2],
    ['error_code=FOT_CHECK_FAILED', 1],
    ['environment=test&outcome=upstream_timeout', 1],
    ['consumer_ods=NOSUCH', 0],
    ['jwt_finding=JWT_EXPIRED', 2],
    ['jwt_finding=JWT_SUB_MISMATCH', 1],
    ['jwt_finding=JWT_MISSING', 0],
    ['interaction_finding=INTERACTION_METHOD', 1],
    ['interaction_finding=INTERACTION_PATH&environment=test', 1],
    ['jwt_finding=JWT_EXPIRED&interaction_finding=INTERACTION_METHOD', 1],
    ['jwt_finding=JWT_EXPIRED&environment=live', 1],
  ])('%s selects exactly its rows', async (q, n) => {
    const r = await get(`/audit/transactions?${OCT}&${q}&limit=100`);
    expect(r.status).toBe(200);
    expect(r.json().transactions).toHaveLength(n);
  });

  test('a bad or unknown filter is a 400 naming it and listing every valid filter with what it takes', async () => {
    for (const [q, filter] of [
      ['consumer_ods=FA-565', 'consumer_ods'],
      ['provider_ods=', 'provider_ods'],
      ['environment=LIVE', 'environment'],
      ['jwt_requesting_organization=%27x', 'jwt_requesting_organization'],
      ['trace_id=not-a-guid', 'trace_id'],
      ['nonsense=1', 'nonsense'],
      ['consumer_ods=A&consumer_ods=B', 'consumer_ods'],
      ['jwt_finding=JWT_NO_SUCH_RULE', 'jwt_finding'],
      ['jwt_finding=jwt_expired', 'jwt_finding'],
      ['interaction_finding=INTERACTION_SOMETHING', 'interaction_finding'],
      ['interaction_finding=JWT_EXPIRED', 'interaction_finding'],
    ]) {
      for (const path of ['/audit/transactions', '/audit/summary']) {
        const r = await get(`${path}?${path.endsWith('summary') ? 'group_by=outcome&' : ''}${q}`);
        expect([path, q, r.status]).toEqual([path, q, 400]);
        const body = r.json();
        expect(body).toMatchObject({ error: 'invalid filter', filter });
        for (const name of [
          'trace_id',
          'consumer_asid',
          'provider_asid',
          'consumer_ods',
          'provider_ods',
          'interaction_id',
          'outcome',
          'status',
          'error_code',
          'environment',
          'jwt_requesting_organization',
          'jwt_finding',
          'interaction_finding',
          'from',
          'to',
        ])
          expect(typeof body.valid[name]).toBe('string');
        // A finding filter's 400 lists every code it takes (the lists of src/check).
        if (filter === 'jwt_finding') for (const code of JWT_RULE_CODES) expect(body.message).toContain(code);
        if (filter === 'interaction_finding') for (const code of INTERACTION_FINDING_CODES) expect(body.message).toContain(code);
      }
    }
    expect((await get('/audit/transactions?format=xml')).json()).toMatchObject({ filter: 'format' });
  });
});

describe('summary', () => {
  test('groups by two dimensions: transactions, refusals, errors, first and last seen, most first', async () => {
    const r = await get(`/audit/summary?group_by=provider_asid,consumer_ods&${OCT}`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({
      group_by: ['provider_asid', 'consumer_ods'],
      groups: [
        {
          key: { provider_asid: '918999198993', consumer_ods: 'FA565' },
          transactions: 6,
          refusals: 1,
          errors: 2,
          first_seen: '2026-10-01T10:00:00.000Z',
          last_seen: '2026-10-01T12:00:00.000Z',
        },
        {
          key: { provider_asid: '918999198993', consumer_ods: 'Y12345' },
          transactions: 1,
          refusals: 0,
          errors: 0,
          first_seen: '2026-10-01T11:00:00.000Z',
          last_seen: '2026-10-01T11:00:00.000Z',
        },
        {
          key: { provider_asid: '918999198994', consumer_ods: 'FA565' },
          transactions: 1,
          refusals: 0,
          errors: 0,
          first_seen: '2026-10-01T10:10:00.000Z',
          last_seen: '2026-10-01T10:10:00.000Z',
        },
      ],
      truncated: false,
    });
  });

  test('by hour, with the same filters; limit bounds the groups and says truncated', async () => {
    const hours = (await get(`/audit/summary?group_by=hour&${OCT}&consumer_ods=FA565`)).json();
    expect(hours.groups.map((g: any) => [g.key.hour, g.transactions])).toEqual([
      ['2026-10-01T10:00:00Z', 3], // a tie: by key
      ['2026-10-01T11:00:00Z', 3],
      ['2026-10-01T12:00:00Z', 1],
    ]);
    const top = (await get(`/audit/summary?group_by=outcome,environment&${OCT}&limit=2`)).json();
    expect(top.groups).toHaveLength(2);
    expect(top.truncated).toBe(true);
    expect(top.groups[0]).toMatchObject({ key: { outcome: 'forwarded', environment: 'live' }, transactions: 4 });
    for (const q of [
      'group_by=',
      'group_by=outcome,outcome',
      'group_by=a,b,c',
      'group_by=outcome,day,hour',
      'group_by=trace_id',
      'group_by=outcome&limit=0',
      'limit=5',
    ]) {
      expect([q, (await get(`/audit/summary?${q}`)).status]).toEqual([q, 400]);
    }
  });

  test('by finding: one group per code a transaction holds, those with none in the group ""', async () => {
    const jwt = (await get(`/audit/summary?group_by=jwt_finding&${OCT}`)).json();
    expect(jwt.groups.map((g: any) => [g.key.jwt_finding, g.transactions, g.refusals, g.errors])).toEqual([
      ['', 6, 0, 2],
      ['JWT_EXPIRED', 2, 1, 0],
      ['JWT_SUB_MISMATCH', 1, 0, 0],
    ]);
    const both = (await get(`/audit/summary?group_by=environment,interaction_finding&${OCT}`)).json();
    expect(both.groups.map((g: any) => [g.key.environment, g.key.interaction_finding, g.transactions])).toEqual([
      ['live', '', 6],
      ['test', 'INTERACTION_METHOD', 1],
      ['test', 'INTERACTION_PATH', 1],
    ]);
    // With a finding filter: the rows that hold it, grouped by every code they hold.
    const expired = (await get(`/audit/summary?group_by=jwt_finding&jwt_finding=JWT_EXPIRED&${OCT}`)).json();
    expect(expired.groups.map((g: any) => [g.key.jwt_finding, g.transactions])).toEqual([
      ['JWT_EXPIRED', 2],
      ['JWT_SUB_MISMATCH', 1],
    ]);
  });

  test('a summary of 45,000 rows by day', async () => {
    const r = (await get('/audit/summary?group_by=day&consumer_ods=BULK1')).json();
    expect(r.groups).toEqual([
      {
        key: { day: '2026-09-01T00:00:00Z' },
        transactions: BULK,
        refusals: 0,
        errors: 0,
        first_seen: '2026-09-01T00:00:00.000Z',
        last_seen: expect.any(String),
      },
    ]);
  });
});

/** Splits an export into its data and its manifest (the last line). */
function splitExport(body: Buffer, format: 'csv' | 'ndjson'): { data: Buffer; manifest: any } {
  const text = body.toString('utf8');
  const cut = text.lastIndexOf(format === 'csv' ? '\r\n#' : '\n{"export"');
  const data = Buffer.from(text.slice(0, cut + (format === 'csv' ? 2 : 1)), 'utf8');
  const line = text.slice(cut + (format === 'csv' ? 2 : 1)).trimEnd();
  return { data, manifest: JSON.parse(format === 'csv' ? line.replace(/^# /, '') : line).export };
}

/**
 * An export's rows as the export before time windows wrote them: keyset pages over the
 * whole range (FINAL, the filters, rows older than the last one written, newest first,
 * LIMIT), the same encoding. The reference a windowed export must equal byte for byte.
 */
async function keysetExport(filters: Record<string, string>, format: 'csv' | 'ndjson', maxRows = Infinity): Promise<Buffer> {
  const parts: Buffer[] = format === 'csv' ? [Buffer.from(CSV_HEADER)] : [];
  let after: KeysetPosition | undefined;
  let rows = 0;
  for (let pages = 0; pages < 1000 && rows < maxRows; pages++) {
    const size = Math.min(10_000, maxRows - rows);
    const page = await store.exportPage(after === undefined ? filters : { ...filters, after }, size, format);
    if (page.length > 0) parts.push(pageSlice(page, 0, page.length, format).chunk);
    rows += countLines(page);
    if (countLines(page) < size) break;
    after = lastKey(page, format);
  }
  return Buffer.concat(parts);
}

/** The export route on its own express app over the real store, with windows (and pages) of `windowRows`: what the gateway cannot be configured to do. */
async function exportWith(
  windowRows: number,
  maxRows: number,
  filters: Record<string, string>,
  format: 'csv' | 'ndjson',
): Promise<{ data: Buffer; manifest: any }> {
  const app = express();
  app.get('/export', (_req, res) => void streamExport(store, gw.gateway.log, { maxRows, pageSize: windowRows }, filters, format, res));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const r = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}/export`);
    expect(r.status).toBe(200);
    return splitExport(r.body, format);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('export', () => {
  test('ndjson: every matching row across keyset pages, newest first, none twice, and a manifest whose sha256 covers the bytes before it', async () => {
    // 30,000 of the bulk rows: three pages (10,000 a page), ties at the page boundaries included.
    const from = '2026-09-01T00:00:00.000Z';
    const to = new Date(Date.parse(from) + 10_000 * 7).toISOString();
    const r = await get(`/audit/transactions?format=ndjson&consumer_ods=BULK1&from=${from}&to=${to}&limit=5`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="spine-audit-\d{8}T\d{6}Z\.ndjson"$/);
    expect(r.headers['cache-control']).toBe('no-store');
    const { data, manifest } = splitExport(r.body, 'ndjson');
    const rows = data
      .toString()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(30_000);
    expect(new Set(rows.map((x) => x.event_id)).size).toBe(30_000);
    // Newest first (ties are in ClickHouse's UUID order, which is not the text's).
    for (let i = 1; i < rows.length; i++) if (rows[i - 1].received_at < rows[i].received_at) throw new Error(`row ${i} out of order`);
    expect(rows[0]).toMatchObject({ consumer_ods: 'BULK1', status: 200, duration_ms: 5, received_at: expect.stringMatching(/^2026-09-01T00:01:09\.\d{3}Z$/) });
    expect(manifest).toMatchObject({
      format: 'ndjson',
      filters: { consumer_ods: 'BULK1', from, to },
      who: 'alice',
      rows: 30_000,
      truncated: false,
      max_rows: EXPORT_MAX,
      sha256: createHash('sha256').update(data).digest('hex'),
    });
    expect(Date.parse(manifest.exported_at)).toBeGreaterThan(Date.now() - 120_000);
  });

  test('time windows write the same bytes as keyset pages over the whole range did, CSV and NDJSON, windows of any size', async () => {
    // 38,574 bulk rows, three to a millisecond: several windows of the gateway's own size (25,000 CSV, 15,000 NDJSON rows).
    const from = '2026-09-01T00:00:00.000Z';
    const range = { consumer_ods: 'BULK1', from, to: new Date(Date.parse(from) + 90_000).toISOString() };
    const q = new URLSearchParams(range).toString();
    for (const format of ['csv', 'ndjson'] as const) {
      const expected = await keysetExport(range, format);
      expect(countLines(expected)).toBe(38_574 + (format === 'csv' ? 1 : 0));
      const r = splitExport((await get(`/audit/transactions?format=${format}&${q}`)).body, format);
      expect(r.manifest).toMatchObject({ rows: 38_574, truncated: false });
      expect(r.data.equals(expected)).toBe(true);
    }
    // Small windows: days, minutes and seconds refined into windows of at most 1,000 rows (a boundary every few hundred rows).
    const small = await exportWith(1_000, 1_000_000, range, 'csv');
    expect(small.manifest).toMatchObject({ rows: 38_574, truncated: false });
    expect(small.data.equals(await keysetExport(range, 'csv'))).toBe(true);
    // Windows of 2 rows: a millisecond holds 3, so each is one window read in two keyset pages (2, then 1).
    const ties = { consumer_ods: 'BULK1', from, to: new Date(Date.parse(from) + 70).toISOString() };
    const tied = await exportWith(2, 1_000, ties, 'ndjson');
    expect(tied.manifest).toMatchObject({ rows: 30, truncated: false });
    expect(tied.data.equals(await keysetExport(ties, 'ndjson'))).toBe(true);
    // The cap falls inside a window: the first maxRows rows, and truncated.
    const capped = await exportWith(1_000, 2_500, range, 'ndjson');
    expect(capped.manifest).toMatchObject({ rows: 2_500, truncated: true });
    expect(capped.data.equals(await keysetExport(range, 'ndjson', 2_500))).toBe(true);
  }, 60_000);

  test('csv: RFC 4180 through the header, cells a spreadsheet would run as formulas neutralised, the manifest a last line starting #', async () => {
    const r = await get(`/audit/transactions?format=csv&${OCT}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="spine-audit-\d{8}T\d{6}Z\.csv"$/);
    const { data, manifest } = splitExport(r.body, 'csv');
    const lines = data.toString().split('\r\n');
    expect(lines.pop()).toBe('');
    expect(lines[0].split(',').slice(0, 4)).toEqual(['event_id', 'trace_id', 'received_at', 'completed_at']);
    expect(lines).toHaveLength(1 + october.length);
    const role = lines[0].split(',').indexOf('jwt_practitioner_role');
    expect(role).toBeGreaterThan(0);
    // Newest first: the client_aborted row, whose role cell is a formula: quoted (it holds quotes and a comma) and prefixed.
    expect(lines[1]).toContain(`,"'=HYPERLINK(""http://x"",""y"")",`);
    expect(lines[1].startsWith(String(october[7].event_id))).toBe(true);
    expect(manifest).toMatchObject({ format: 'csv', rows: october.length, truncated: false, sha256: createHash('sha256').update(data).digest('hex') });
  });

  test('csv is byte for byte what csv-stringify writes (escape_formulas, CRLF, line breaks quoted) for hostile cells; ndjson keeps them as they are', async () => {
    const hostile = [
      '=1+2',
      '+SUM(A1)',
      "-2+3+cmd|' /C calc'!A0",
      '@SUM(1)',
      '\tTAB',
      '\rCR',
      'a,b',
      'say "hi"',
      'line1\nline2',
      '\uFF1Dx',
      "'quoted",
      'back\\slash',
      'caf\u00e9',
      '',
      'plain',
    ];
    const text = [
      'failure_reason',
      'jwt_practitioner_id',
      'jwt_practitioner_role',
      'jwt_device',
      'jwt_reason_for_request',
      'jwt_requested_scope',
      'client_cert_subject',
      'client_cert_issuer',
      'client_cert_serial',
      'tls_cipher',
      'target_host',
      'endpoint',
      'method',
      'seal_chain',
      'record_hash',
    ];
    // The finding lists too: a forged spool line may hold any text where the gateway writes codes.
    const rows = [0, 1, 2].map((shift) =>
      row({
        received_at: `2026-08-01T10:00:0${shift}.000Z`,
        consumer_ods: 'HOSTILE',
        upstream_connect_ms: -1,
        ...Object.fromEntries(text.map((c, i) => [c, hostile[(i + shift * 5) % hostile.length]])),
        jwt_findings: [hostile[shift * 2], 'JWT_EXPIRED'],
        interaction_findings: shift === 0 ? [] : [hostile[shift + 7]],
      }),
    );
    await store.insertLines(rows.map((r) => JSON.stringify(r)).join('\n'));
    const q = 'consumer_ods=HOSTILE&from=2026-08-01T00:00:00Z&to=2026-08-02T00:00:00Z';
    const json = (await get(`/audit/transactions?${q}`)).json().transactions as Array<Record<string, unknown>>;
    expect(json).toHaveLength(3);
    // A list's CSV cell is its items joined by CSV_LIST_SEPARATOR, then a text cell like any other.
    const cell = (v: unknown, i: number) =>
      EXPORT_KINDS[i] === 'number' ? Number(v) : EXPORT_KINDS[i] === 'list' ? (v as string[]).join(CSV_LIST_SEPARATOR) : String(v);
    const records = json.map((r) => EXPORT_COLUMNS.map((c, i) => cell(r[c], i)));
    expect(json.map((r) => r.jwt_findings)).toEqual(rows.map((r) => r.jwt_findings).reverse());
    // quoted_match: csv-stringify leaves a lone CR or LF in a cell unquoted by default, which RFC 4180 (and a reader) would take for a line end.
    const expected = stringify([EXPORT_COLUMNS as string[], ...records], { escape_formulas: true, record_delimiter: 'windows', quoted_match: /[\r\n]/ });
    const csv = splitExport((await get(`/audit/transactions?format=csv&${q}`)).body, 'csv');
    expect(csv.data.toString('utf8')).toBe(expected);
    expect(csv.manifest.rows).toBe(3);
    const nd = splitExport((await get(`/audit/transactions?format=ndjson&${q}`)).body, 'ndjson');
    const objects = nd.data
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objects).toEqual(json.map((r) => Object.fromEntries(EXPORT_COLUMNS.map((c, i) => [c, EXPORT_KINDS[i] === 'number' ? Number(r[c]) : r[c]]))));
  });

  test('stops at AUDIT_EXPORT_MAX_ROWS and says truncated', async () => {
    const r = await get('/audit/transactions?format=ndjson&consumer_ods=BULK1');
    const { data, manifest } = splitExport(r.body, 'ndjson');
    expect(data.toString().trimEnd().split('\n')).toHaveLength(EXPORT_MAX);
    expect(manifest).toMatchObject({ rows: EXPORT_MAX, truncated: true });
    // Exactly at the cap is not truncated: nothing more matched.
    const exact = splitExport((await get(`/audit/transactions?format=csv&${OCT}&outcome=forwarded`)).body, 'csv').manifest;
    expect(exact).toMatchObject({ rows: 4, truncated: false });
  });

  test('respects backpressure: a client that stops reading holds the export, which then completes', async () => {
    let res: IncomingMessage | null = null;
    const chunks: Buffer[] = [];
    const req = request(`${admin}/audit/transactions?format=ndjson&consumer_ods=BULK1`, { headers: alice, agent: false }, (r) => {
      res = r;
      r.on('data', (c: Buffer) => chunks.push(c));
      r.pause();
    });
    req.end();
    await waitFor(() => res !== null, 10_000, 'the export to start');
    const before = (await accessUntil('action=export&limit=100', () => true)).length;
    await new Promise((r) => setTimeout(r, 1500));
    // Still waiting for the client: no access-log entry for it yet (an export records when it ends).
    expect(await accessUntil('action=export&limit=100', () => true)).toHaveLength(before);
    const ended = new Promise<void>((resolve) => res!.on('end', () => resolve()));
    res!.resume();
    await ended;
    const { manifest } = splitExport(Buffer.concat(chunks), 'ndjson');
    expect(manifest).toMatchObject({ rows: EXPORT_MAX, truncated: true });
  });

  test('a client that goes away stops the export; the access log records 499 and the rows sent', async () => {
    await new Promise<void>((resolve) => {
      const req = request(`${admin}/audit/transactions?format=csv&consumer_ods=BULK1&environment=bulk`, { headers: alice, agent: false }, (r) => {
        let got = 0;
        r.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 200_000) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => {});
      req.end();
    });
    const [entry] = await accessUntil('action=export&limit=1', (e) => e.length === 1 && e[0].query.environment === 'bulk');
    expect(entry).toMatchObject({ who: 'alice', status: 499, sha256: '' });
    expect(entry.rows).toBeGreaterThan(0);
    expect(entry.rows).toBeLessThan(EXPORT_MAX);
  });
});

describe('access log', () => {
  test('search, summary, export (with the sha256 of its manifest), SQL, and refused 401/403 are recorded, newest first', async () => {
    await get(`/audit/transactions?${OCT}&consumer_ods=Y12345&limit=7`);
    await get(`/audit/summary?group_by=outcome&${OCT}`);
    const exported = splitExport((await get(`/audit/transactions?format=ndjson&${OCT}&environment=test`)).body, 'ndjson').manifest;
    await sql('SELECT count() FROM spine_audit.transactions');
    expect((await get('/audit/summary?group_by=outcome', {})).status).toBe(401);
    expect((await get('/audit/transactions?format=csv', bearer(METRICS))).status).toBe(403);
    expect((await get('/audit/transactions', bearer('wrong-token'))).status).toBe(401);
    const entries = (await accessUntil('limit=50', (e) => e.length >= 7 && e[0].status === 401 && e[0].action === 'search')).slice(0, 7);
    expect(entries.map((e) => [e.action, e.who, e.role, e.status])).toEqual([
      ['search', '', '', 401],
      ['export', 'prometheus', 'metrics', 403],
      ['summary', '', '', 401],
      ['sql', 'alice', 'auditor', 200],
      ['export', 'alice', 'auditor', 200],
      ['summary', 'alice', 'auditor', 200],
      ['search', 'alice', 'auditor', 200],
    ]);
    const [, , , sqlEntry, exportEntry, summary, search] = entries;
    expect(search).toMatchObject({
      route: '/audit/transactions',
      client_ip: '127.0.0.1',
      rows: 1,
      query: { consumer_ods: 'Y12345', from: '2026-10-01T00:00:00Z', to: '2026-10-02T00:00:00Z', limit: 7 },
    });
    expect(search.duration_ms).toBeGreaterThan(0);
    expect(Date.parse(search.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(summary).toMatchObject({ route: '/audit/summary', rows: 5, query: { group_by: ['outcome'] } });
    expect(exportEntry).toMatchObject({ rows: 2, sha256: exported.sha256, query: { environment: 'test', format: 'ndjson' } });
    expect(exportEntry.bytes).toBeGreaterThan(1000);
    expect(sqlEntry).toMatchObject({ route: '/audit/sql', rows: 1, query: { sql: 'SELECT count() FROM spine_audit.transactions' } });
    // And each use is one log line.
    gw.gateway.log.flush();
    const lines = readFileSync(gw.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"audit access"'))
      .map((l) => JSON.parse(l));
    expect(lines.some((l) => l.action === 'export' && l.sha256 === exported.sha256 && l.who === 'alice')).toBe(true);
    expect(lines.some((l) => l.status === 403 && l.who === 'prometheus')).toBe(true);
  });

  test('GET /audit/access-log pages with a cursor and filters by who, action and time; bad filters are 400s', async () => {
    for (let i = 0; i < 3; i++) await get('/audit/summary?group_by=day&consumer_ods=NONE');
    const page1 = await accessUntil('who=alice&action=summary&limit=2', (e) => e.length === 2);
    expect(page1.every((e) => e.who === 'alice' && e.action === 'summary')).toBe(true);
    const r1 = (await get('/audit/access-log?who=alice&action=summary&limit=2')).json();
    const r2 = (await get(`/audit/access-log?who=alice&action=summary&limit=2&cursor=${r1.next_cursor}`)).json();
    expect(r2.entries).toHaveLength(2);
    expect(r2.entries[0].at <= r1.entries[1].at).toBe(true);
    const future = (await get(`/audit/access-log?from=${new Date(Date.now() + 3_600_000).toISOString()}`)).json();
    expect(future).toEqual({ entries: [], next_cursor: null });
    const refused = (await get('/audit/access-log?who=&limit=5')).json().entries;
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e: any) => e.status === 401)).toBe(true);
    for (const q of ['action=delete', 'who=a%20b', 'cursor=abc', 'limit=0', 'x=1']) expect([q, (await get(`/audit/access-log?${q}`)).status]).toEqual([q, 400]);
  });

  test('an insert that fails is kept in a bounded queue and retried: no entry is lost', async () => {
    const accessLog = gw.gateway as unknown as { audit: unknown };
    void accessLog;
    await command(`DETACH TABLE ${store.database}.access_log`);
    const marker = 'Z' + randomUUID().slice(0, 8).toUpperCase().replace(/-/g, '');
    try {
      for (let i = 0; i < 3; i++) expect((await get(`/audit/transactions?consumer_ods=${marker}`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await command(`ATTACH TABLE ${store.database}.access_log`);
    }
    const entries = await accessUntil('action=search&limit=50', (e) => e.filter((x) => x.query.consumer_ods === marker).length === 3, 20_000);
    expect(entries.filter((x) => x.query.consumer_ods === marker)).toHaveLength(3);
    gw.gateway.log.flush();
    expect(readFileSync(gw.logFile, 'utf8')).toContain('access log: insert failed, entries kept and retried');
  }, 30_000);
});

describe('auditor SQL', () => {
  test('a read-only SELECT over the audit database answers columns and rows, bounded by AUDIT_SQL_MAX_ROWS', async () => {
    const r = await sql(
      `SELECT outcome, count() AS n FROM spine_audit.transactions WHERE received_at < '2026-10-02' AND received_at >= '2026-10-01' GROUP BY outcome ORDER BY outcome;`,
    );
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      columns: [
        { name: 'outcome', type: 'LowCardinality(String)' },
        { name: 'n', type: 'UInt64' },
      ],
      rows: [
        ['client_aborted', 1],
        ['denied', 1],
        ['forwarded', 4],
        ['upstream_error', 1],
        ['upstream_timeout', 1],
      ],
      rows_returned: 5,
      truncated: false,
    });
    expect(typeof r.json.elapsed_ms).toBe('number');
    const many = await sql("WITH b AS (SELECT event_id FROM spine_audit.transactions WHERE consumer_ods = 'BULK1') SELECT * FROM b");
    expect(many.json).toMatchObject({ rows_returned: 5, truncated: true });
    const joined = await sql(
      'SELECT a.outcome, count() FROM spine_audit.transactions AS a INNER JOIN spine_audit.access_log AS l ON a.client_ip = l.client_ip GROUP BY a.outcome LIMIT 1',
    );
    expect(joined.status).toBe(200);
  });

  test.each<[string, string, RegExp]>([
    ['the scalar file() (readonly does not stop it)', "SELECT file('/etc/passwd')", /function file is not allowed/],
    ['file() in upper case', "SELECT FILE('/etc/passwd')", /function FILE is not allowed/],
    ['the file table function', "SELECT * FROM file('/etc/passwd', 'LineAsString')", /table functions are not allowed/],
    ['url (network)', "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", /table functions are not allowed/],
    ['remote (network)', "SELECT * FROM remote('127.0.0.1:9', system.one)", /table functions are not allowed/],
    ['s3', "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV')", /table functions are not allowed/],
    ['executable', "SELECT * FROM executable('id', 'TSV', 'x String')", /table functions are not allowed/],
    [
      'a table function in a join',
      "SELECT 1 FROM spine_audit.transactions AS t JOIN file('/etc/hosts', 'LineAsString') AS f ON 1 = 1",
      /table functions are not allowed/,
    ],
    ['a table function in a scalar subquery', "SELECT (SELECT count() FROM url('http://127.0.0.1:9/', 'LineAsString'))", /table functions are not allowed/],
    ['EXPLAIN as a subquery (viewExplain)', 'EXPLAIN SELECT 1', /not allowed/],
    ['INTO OUTFILE', "SELECT 1 INTO OUTFILE '/tmp/spine-sql-outfile'", /code 62/],
    ['SETTINGS overriding readonly', "SELECT getSetting('readonly') SETTINGS readonly = 0", /SETTINGS are not allowed/],
    ['SETTINGS overriding the time limit', 'SELECT 1 FROM spine_audit.transactions SETTINGS max_execution_time = 3600', /SETTINGS are not allowed/],
    ['two statements', 'SELECT 1; DROP TABLE spine_audit.transactions', /one statement only/],
    ['two statements, the ; inside a comment', 'SELECT 1 /* ; */ + 1', /one statement only/],
    ['a parenthesis closed early (syntax)', 'SELECT 1) UNION ALL (SELECT * FROM system.users', /code 62/],
    ['a parenthesis closed early (parses)', 'SELECT 1) AS a, (SELECT * FROM system.users', /send one SELECT statement/],
    ['a parenthesis closed early, then a union', 'SELECT 1) UNION ALL SELECT * FROM (SELECT name FROM system.users', /send one SELECT statement/],
    ['a parenthesis closed early, then a clause', "SELECT 1) INTO OUTFILE '/tmp/x' --", /code 62|SELECT statement/],
    ['a system table', 'SELECT * FROM system.users', /only the tables of spine_audit/],
    ['a system table in a subquery', 'SELECT 1 WHERE 1 IN (SELECT 1 FROM system.one)', /only the tables of spine_audit/],
    ['a system table as an IN set', "SELECT 1 WHERE 'default' IN system.users", /only the tables of spine_audit/],
    ['another database', 'SELECT * FROM default.anything', /only the tables of spine_audit/],
    ['an unqualified table', 'SELECT * FROM transactions', /named with their database/],
    ['an unqualified table declared a CTE only inside a string', "SELECT * FROM secret WHERE 'x' != ', secret AS ('", /named with their database/],
    ['dictGet', "SELECT dictGet('d', 'a', 1)", /function dictGet is not allowed/],
    ['joinGet', "SELECT joinGet('spine_audit.transactions', 'a', 1)", /function joinGet is not allowed/],
    ['INSERT', "INSERT INTO spine_audit.transactions (trace_id) VALUES ('x')", /code 62/],
    ['ALTER ... DELETE', 'ALTER TABLE spine_audit.transactions DELETE WHERE 1', /code 62/],
    ['DROP', 'DROP TABLE spine_audit.transactions', /code 62/],
    ['SYSTEM', 'SYSTEM SHUTDOWN', /code 62/],
    ['SET', 'SET readonly = 0', /code 62/],
  ])('refused: %s', async (_name, text, message) => {
    const r = await sql(text);
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('invalid request');
    expect(r.json.message).toMatch(message);
  });

  test('nothing was written, dropped or changed by the refused statements', async () => {
    expect((await sql(`SELECT count() FROM spine_audit.transactions WHERE consumer_ods = 'BULK1'`)).json.rows).toEqual([[BULK]]);
    expect((await sql('SELECT 1 FROM spine_audit.schema_migrations LIMIT 1')).status).toBe(200);
    // The shared engine session is not left read-only: the proxy's records still arrive.
    const id = randomUUID();
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }) })).status).toBe(200);
    await waitFor(async () => (await get(`/audit/transactions?trace_id=${id}`)).json().transactions.length === 1, 10_000, 'the new record', 100);
  });

  test('a query over AUDIT_SQL_TIMEOUT_MS is stopped; a bad body is a 400', async () => {
    const slow = await sql(
      'SELECT count() FROM spine_audit.transactions AS a, spine_audit.transactions AS b, spine_audit.transactions AS c WHERE a.seq + b.seq + c.seq = 7',
    );
    expect(slow.status).toBe(400);
    expect(slow.json.message).toMatch(/AUDIT_SQL_TIMEOUT_MS/);
    for (const body of ['not json', '{"sql":1}', '{"sql":"SELECT 1","x":1}', '[]', '']) {
      const r = await send(`${admin}/audit/sql`, { method: 'POST', headers: { ...alice, 'Content-Type': 'application/json' }, body });
      expect([body, r.status]).toEqual([body, 400]);
    }
    expect((await sql('SELECT 1', bearer(METRICS))).status).toBe(403);
  });
});

describe('privacy', () => {
  test('canaries typed into filters, paths and SQL literals reach neither an export, a summary, the access log nor a log line', async () => {
    const canaries = ['9434765919', 'CANARYSQL7741', 'CANARYPATH7742', 'CANARYFILTER7743', 'CANARYKEY7744'];
    const outputs: string[] = [];
    const keep = async (p: string) => outputs.push((await get(p)).body.toString());
    await sql(`SELECT count() FROM spine_audit.transactions WHERE jwt_practitioner_id = '${canaries[0]}' OR trace_id = '${canaries[1]}'`);
    await sql(`SELECT ${canaries[0]} AS "${canaries[1]}" /* ${canaries[1]} */`);
    await keep(`/audit/${canaries[2]}?x=${canaries[3]}`);
    await keep(`/audit/transactions?trace_id=${canaries[3]}`);
    await keep(`/audit/transactions?${canaries[4]}=${canaries[3]}&format=csv`);
    await keep(`/audit/summary?group_by=outcome&consumer_asid=${canaries[0]}x`);
    await keep(`/audit/summary?group_by=${canaries[3]}`);
    await keep(`/audit/access-log?who=${canaries[3]}%20`);
    await keep(`/audit/transactions?format=ndjson&${OCT}`);
    await keep(`/audit/transactions?format=csv&${OCT}`);
    await keep(`/audit/summary?group_by=provider_ods,jwt_requesting_organization&${OCT}`);
    const log = await accessUntil('limit=60', (e) => e.some((x) => x.route === '/audit/*'));
    outputs.push(JSON.stringify(log));
    // The access log's own rows, every column.
    const stored = await sql('SELECT * FROM spine_audit.access_log WHERE at > now() - INTERVAL 1 HOUR ORDER BY at DESC LIMIT 5');
    void stored;
    const raw = await (store as unknown as { queryRows<T>(q: string, p: object): Promise<T[]> }).queryRows<{ t: string }>(
      `SELECT toString(tuple(*)) AS t FROM ${store.database}.access_log`,
      {},
    );
    outputs.push(raw.map((r) => r.t).join('\n'));
    gw.gateway.log.flush();
    outputs.push(readFileSync(gw.logFile, 'utf8'));
    // The refused requests answered the caller (who may see their own text); what was kept is checked:
    // the export and summary files above, the access log (API and table) and the log file.
    const kept = outputs.slice(-6).join('\n');
    for (const canary of canaries) expect({ canary, found: kept.includes(canary) }).toEqual({ canary, found: false });
    expect(raw.length).toBeGreaterThan(10);
  });
});

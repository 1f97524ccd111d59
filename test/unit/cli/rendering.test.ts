import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCliInProcess, type CliRun } from '../../helpers/cli-kit';
import { describeVerify } from '../../../src/cli/commands/verify';

/**
 * How each command renders the answers the admin API can give, edge cases included: a
 * real HTTP server on 127.0.0.1 answers with the API's documented shapes (api-shapes:
 * every field the CLI reads), and the commands run through main() as the bin runs them.
 */
let server: Server;
let answers: Record<string, unknown>;
const asked: string[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    asked.push(req.url ?? '');
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      const answer = answers[path];
      if (answer === undefined) {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end('{"error":"not found"}');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function run(args: string[], columns = '250'): Promise<CliRun> {
  return runCliInProcess(args, { SPINE_GATEWAY_ADMIN_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, COLUMNS: columns });
}

describe('verify', () => {
  const base = {
    periods_checked: 3,
    records_checked: 1234,
    records_unsealed: 0,
    from: '2026-12-01T00:00:00Z',
    to: '2026-12-02T00:00:00.000Z',
    key_id: '0123456789abcdef',
  };

  test('intact, with the range and key; colour only when asked for', () => {
    const text = describeVerify({ status: 'intact', first_break: null, ...base }, false);
    expect(text).toBe(
      [
        'Intact: every record in range matches its sealed, signed period',
        '  range    2026-12-01 00:00:00 to 2026-12-02 00:00:00 UTC',
        '  periods  3 checked',
        '  records  1,234 checked',
        '  key id   0123456789abcdef',
        '',
      ].join('\n'),
    );
    expect(describeVerify({ status: 'intact', first_break: null, ...base }, true).startsWith('\x1b[32;1mIntact\x1b[0m: ')).toBe(true);
  });

  test('several chains (gateways sharing the store): one line each, with its verdict', () => {
    const chains = [
      { chain: 'c1', instance: 'gw-0', status: 'intact', periods_checked: 2, records_checked: 1000 },
      { chain: 'c2', instance: 'gw-1', status: 'intact', periods_checked: 1, records_checked: 234 },
    ];
    const text = describeVerify({ status: 'intact', first_break: null, ...base, chains }, false);
    expect(text).toContain('  chain    c1 (gw-0): intact, 2 periods, 1,000 records\n  chain    c2 (gw-1): intact, 1 period, 234 records\n');
    // One chain: nothing more than before.
    expect(describeVerify({ status: 'intact', first_break: null, ...base, chains: chains.slice(0, 1) }, false)).not.toContain('chain');
  });

  test('nothing sealed yet, unsealed and in-flight records said plainly', () => {
    const text = describeVerify(
      { status: 'intact', first_break: null, periods_checked: 0, records_checked: 0, records_unsealed: 30, records_in_flight: 2 },
      false,
    );
    expect(text).toContain('Intact, but nothing in range is sealed yet: run it again after the next seal (AUDIT_SEAL_PERIOD_MS)');
    expect(text).toContain('  range      the start to now UTC');
    expect(text).toContain('  records    0 checked, 30 not sealed yet (checked by a later run)');
    expect(text).toContain('  in flight  2 (transactions not finished yet: no final record to check)');
  });

  test.each([
    ['missing', 'a sealed record is not in the store (deleted)'],
    ['altered', "a record's content differs from what was sealed"],
    ['extra', 'the store holds a record no seal covers (inserted)'],
    ['digest_missing', "a period's signed digest is gone"],
    ['digest_invalid', "a period's digest does not check out (altered, or signed with another key)"],
  ])('broken, %s: the kind in words, the period as a time', (kind, words) => {
    const text = describeVerify(
      { status: 'broken', ...base, first_break: { chain: 'c-1', period: Date.UTC(2026, 11, 1, 9, 30), kind, seq: 7, event_id: 'e-1' } },
      true,
    );
    const lines = text.split('\n');
    expect(lines[0]).toBe(`\x1b[31;1mBROKEN\x1b[0m: ${kind}, ${words}`);
    expect(lines[1]).toBe('  first break  the period from 2026-12-01 09:30:00 UTC, chain c-1');
    expect(lines).toContain('  event id     e-1');
    expect(lines).toContain('  seq          7');
  });

  test('broken of an unknown kind, the period as text or digits', () => {
    expect(describeVerify({ status: 'broken', first_break: { kind: 'novel', period: '1796304000000', chain: 'c' } }, false)).toMatch(
      /^BROKEN: novel\n {2}first break {2}the period from 2026-\d\d-\d\d \d\d:\d\d:\d\d UTC, chain c\n/,
    );
    expect(describeVerify({ status: 'broken', first_break: null }, false)).toMatch(/^BROKEN: \n {2}first break {2}the period from , chain \n/);
  });

  test('through the API: 0 intact, 1 broken (--json too), 4 for an answer without a status', async () => {
    answers = { '/audit/verify': { status: 'intact', first_break: null, ...base } };
    expect((await run(['audit', 'verify', '--from', '2026-12-01'])).status).toBe(0);
    expect(asked[asked.length - 1]).toBe('/audit/verify?from=2026-12-01T00%3A00%3A00Z');
    answers = { '/audit/verify': { status: 'broken', ...base, first_break: { chain: 'c', period: 1, kind: 'extra' } } };
    expect((await run(['audit', 'verify'])).status).toBe(1);
    const json = await run(['audit', 'verify', '--json']);
    expect([json.status, JSON.parse(json.stdout).status]).toEqual([1, 'broken']);
    answers = { '/audit/verify': { periods_checked: 1 } };
    const odd = await run(['audit', 'verify']);
    expect([odd.status, odd.stderr]).toEqual([4, "spine-gateway: the gateway's verify answer has no status intact or broken: is it this version?\n"]);
  });
});

describe('sql', () => {
  test('NULLs, arrays and maps shown; numbers right-aligned; truncation and no rows said on stderr', async () => {
    answers = {
      '/audit/sql': {
        columns: [
          { name: 'who', type: 'Nullable(String)' },
          { name: 'n', type: 'UInt64' },
          { name: 'tags', type: 'Array(String)' },
        ],
        rows: [
          [null, 5, ['a', 'b']],
          ['x', 12345, []],
        ],
        rows_returned: 2,
        truncated: true,
        elapsed_ms: 3.2,
      },
    };
    const r = await run(['audit', 'sql', 'SELECT 1']);
    expect(r.stdout).toBe('who       n  tags\nNULL      5  ["a","b"]\nx     12345  []\n');
    expect(r.stderr).toBe("2 rows in 3 ms (truncated at the gateway's row limit, AUDIT_SQL_MAX_ROWS)\n");
    answers = { '/audit/sql': { columns: [{ name: 'n', type: 'UInt8' }], rows: [], rows_returned: 0, truncated: false, elapsed_ms: 1 } };
    const none = await run(['audit', 'sql', 'SELECT 1 WHERE 0']);
    expect([none.stdout, none.stderr]).toEqual(['(no rows)\n', '0 rows in 1 ms\n']);
    const empty = await run(['audit', 'sql', '   ']);
    expect([empty.status, empty.stderr]).toEqual([2, 'spine-gateway: the query is empty: give it as an argument, or on stdin\n']);
  });
});

describe('access-log, summary, search', () => {
  test('access-log: what was asked, short; the next page; nothing', async () => {
    const entry = (query: unknown, route = '/audit/transactions') => ({
      at: '2026-12-03T12:00:00.000Z',
      who: 'casey',
      role: 'auditor',
      client_ip: '127.0.0.1',
      action: 'search',
      route,
      query,
      status: 200,
      rows: 3,
      duration_ms: 1500,
    });
    answers = {
      '/audit/access-log': {
        entries: [
          entry({ sql: 'SELECT ?', sql_sha256: 'ab' }),
          entry({ consumer_asid: '1', filters: { a: 1 } }),
          entry({}, '/audit/verify'),
          entry('raw'),
          entry(null),
        ],
        next_cursor: 'abc',
      },
    };
    const r = await run(['audit', 'access-log', '--who', 'casey', '--action', 'search', '--limit', '5', '--cursor', 'x', '--from', '1h']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('AT (UTC)             WHO    ROLE     CLIENT     ACTION  STATUS  ROWS  DURATION  ASKED');
    expect(lines.slice(1).map((l) => l.slice(lines[0].indexOf('ASKED')))).toEqual([
      'SELECT ?',
      'consumer_asid=1 filters={"a":1}',
      '/audit/verify',
      'raw',
      '/audit/transactions',
    ]);
    expect(r.stderr).toBe('More entries: the same command with --cursor abc\n');
    expect(asked[asked.length - 1]).toMatch(/^\/audit\/access-log\?from=.*&who=casey&action=search&limit=5&cursor=x$/);
    answers = { '/audit/access-log': { entries: [], next_cursor: null } };
    expect((await run(['audit', 'access-log'])).stdout).toBe('No entries match.\n');
    expect(JSON.parse((await run(['audit', 'access-log', '--json'])).stdout)).toEqual({ entries: [], next_cursor: null });
  });

  test('summary: hours, days and interactions readable; truncation said; nothing', async () => {
    const group = (key: Record<string, unknown>) => ({
      key,
      transactions: 1200,
      refusals: 3,
      errors: 0,
      first_seen: '2026-12-03T09:00:01.000Z',
      last_seen: '2026-12-03T09:59:59.000Z',
    });
    answers = {
      '/audit/summary': {
        group_by: ['hour', 'interaction_id'],
        groups: [
          group({ hour: '2026-12-03T09:00:00.000Z', interaction_id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1' }),
          group({ hour: null }),
        ],
        truncated: true,
      },
    };
    const r = await run(['audit', 'summary', '--group-by', 'hour, interaction_id', '--limit', '2']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^HOUR \(UTC\) +INTERACTION ID +TRANSACTIONS +REFUSALS +ERRORS +FIRST SEEN \(UTC\) +LAST SEEN \(UTC\)$/);
    expect(lines[1]).toMatch(/^2026-12-03 09:00 +fhir:rest:read:metadata-1 +1,200 +3 +0 +2026-12-03 09:00:01 +2026-12-03 09:59:59$/);
    expect(r.stderr).toBe('Only the first 2 groups: narrow the filters, or raise --limit\n');
    expect(asked[asked.length - 1]).toBe('/audit/summary?group_by=hour%2Cinteraction_id&limit=2');
    answers = { '/audit/summary': { group_by: ['day'], groups: [group({ day: '2026-12-03T00:00:00Z' })], truncated: false } };
    expect((await run(['audit', 'summary', '--group-by', 'day'])).stdout).toMatch(/^DAY \(UTC\) +TRANSACTIONS.*\n2026-12-03 +1,200 /);
    answers = { '/audit/summary': { group_by: ['day'], groups: [], truncated: false } };
    expect((await run(['audit', 'summary', '--group-by', 'day'])).stdout).toBe('No transactions match.\n');
    expect((await run(['audit', 'summary'])).status).toBe(2); // --group-by is required
  });

  test('a narrow terminal: columns hidden and named on stderr; a 404 is exit 4', async () => {
    answers = {
      '/audit/transactions': {
        transactions: [
          {
            received_at: '2026-12-03T09:00:00.000Z',
            trace_id: 't',
            consumer_asid: '1',
            provider_asid: '2',
            outcome: 'forwarded',
            status: 200,
            duration_ms: 65_000,
          },
        ],
        next_cursor: null,
      },
    };
    const r = await run(['audit', 'search'], '60');
    expect(r.stderr).toMatch(/^\(hidden to fit the terminal: /);
    const wide = await run(['audit', 'search']);
    expect(wide.stdout).toContain('1 min 5 s');
    answers = {};
    const missing = await run(['audit', 'search']);
    expect(missing.status).toBe(4);
    expect(missing.stderr).toMatch(/has no \/audit\/transactions: is audit on \(AUDIT_ENABLED\)/);
  });
});

import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeAuditRecord } from '../../src/audit';
import { AuditStore } from '../../src/clickhouse';
import { encodeRecord } from '../../src/spool';
import { Transaction } from '../../src/transaction';
import { runGateway, type ChildGateway } from '../helpers/child-gateway';
import {
  CONSUMER_ASID,
  directoryYaml,
  freePort,
  okHandler,
  PROVIDER_ASID,
  REPO,
  send,
  sspHeaders,
  startProvider,
  tempDir,
  TRACE_ID,
  waitFor,
  type TestProvider,
  adminTokensFile,
} from '../helpers/test-kit';

/**
 * The command line (`spine-gateway`, dist/src/cli/spine-gateway.js) as a person or a script
 * runs it: a child process against a running gateway (itself a child process, audit on the
 * embedded engine, admin tokens on), with nothing but PATH and the SPINE_GATEWAY_* variables.
 */
const CLI = join(REPO, 'dist', 'src', 'cli', 'spine-gateway.js');
const AUDITOR_TOKEN = 'cli-auditor-3f9a61c0d2b4e8';
const METRICS_TOKEN = 'cli-metrics-77c2a0e915';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let provider: TestProvider;
let gw: ChildGateway;
let adminUrl: string;
/** Trace IDs of the traffic sent, in order; TRACE_ID has four transactions, one of them refused. */
const traces: string[] = [];
const FORWARDED = 12;

function cli(args: string[], options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', SPINE_GATEWAY_ADMIN_URL: adminUrl, SPINE_GATEWAY_TOKEN: AUDITOR_TOKEN };
    for (const [k, v] of Object.entries(options.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`spine-gateway ${args.join(' ')} did not finish: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** The API's own answer, for comparison with what the CLI printed. */
async function api(path: string): Promise<Record<string, unknown>> {
  const r = await send(`${adminUrl}${path}`, { headers: { Authorization: `Bearer ${AUDITOR_TOKEN}` } });
  expect(r.status).toBe(200);
  return JSON.parse(r.body.toString()) as Record<string, unknown>;
}

beforeAll(async () => {
  provider = await startProvider(okHandler());
  const tokens = adminTokensFile([
    { name: 'casey', role: 'auditor', token: AUDITOR_TOKEN },
    { name: 'prometheus', role: 'metrics', token: METRICS_TOKEN },
  ]);
  // JWT_CHECK off: the test kit's token breaks most rules, and these tables are about the records' other columns.
  gw = await runGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', ADMIN_TOKENS_FILE: tokens, LOG_LEVEL: 'info', JWT_CHECK: 'off' });
  adminUrl = `http://127.0.0.1:${gw.adminPort}`;
  const url = gw.url(`${provider.root}/metadata`);
  for (let i = 0; i < FORWARDED; i++) {
    const trace = i % 5 === 0 ? TRACE_ID : randomUUID();
    traces.push(trace);
    expect((await send(url, { headers: sspHeaders({ 'Ssp-TraceID': trace }) })).status).toBe(200);
  }
  // A consumer without a data-sharing agreement: refused (403), in the same trace.
  traces.push(TRACE_ID);
  expect((await send(url, { headers: sspHeaders({ 'Ssp-From': '200000000360' }) })).status).toBe(403);
  await waitFor(
    async () => {
      // The embedded store may still be starting (503): asked again until the deadline.
      const r = await send(`${adminUrl}/audit/transactions?limit=1000`, { headers: { Authorization: `Bearer ${AUDITOR_TOKEN}` } });
      return r.status === 200 && (JSON.parse(r.body.toString()) as { transactions: unknown[] }).transactions.length >= traces.length;
    },
    20_000,
    'the traffic in the audit store',
    200,
  );
}, 60_000);

afterAll(async () => {
  gw?.kill('SIGTERM');
  await gw?.exited;
  await provider?.close();
});

describe('search and trace', () => {
  test('search prints a table for people: headers, one aligned line per row, times readable', async () => {
    const r = await cli(['audit', 'search', '--consumer-asid', CONSUMER_ASID, '--limit', '5'], { env: { COLUMNS: '250' } });
    expect(r.stderr).toMatch(/^More rows: the same command with --cursor [A-Za-z0-9_-]+\n$/);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^RECEIVED \(UTC\) +TRACE ID +CONSUMER +PROVIDER +INTERACTION +OUTCOME +STATUS +DURATION +ERROR CODE +CONSUMER ODS +PROVIDER ODS +ENV +FINDINGS$/,
    );
    expect(lines).toHaveLength(6);
    for (const line of lines.slice(1)) {
      expect(line).toMatch(
        /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} {2}[0-9a-f-]{36} {2}200000000359 {2}918999198993 {2}fhir:rest:read:metadata-1 +forwarded +200 +\d+ ms/,
      );
      // Columns line up: each starts where its header does.
      expect(line.indexOf('200000000359')).toBe(lines[0].indexOf('CONSUMER'));
      expect(line.indexOf('forwarded')).toBe(lines[0].indexOf('OUTCOME'));
    }
    // Newest first, as the API: the last five forwarded transactions of the consumer.
    expect(lines.slice(1).map((l) => l.slice(21, 57))).toEqual(traces.slice(FORWARDED - 5, FORWARDED).reverse());
  });

  test('the next page comes with the cursor it printed', async () => {
    const first = await cli(['audit', 'search', '--limit', '4', '--json']);
    const page1 = JSON.parse(first.stdout) as { transactions: Array<{ event_id: string }>; next_cursor: string };
    const shown = await cli(['audit', 'search', '--limit', '4']);
    const cursor = /--cursor (\S+)/.exec(shown.stderr)![1];
    expect(cursor).toBe(page1.next_cursor);
    const second = JSON.parse((await cli(['audit', 'search', '--limit', '4', '--cursor', cursor, '--json'])).stdout) as typeof page1;
    expect(second.transactions).toHaveLength(4);
    expect(second.transactions.map((t) => t.event_id)).not.toContain(page1.transactions[0].event_id);
  });

  test('the table fits the terminal: columns hidden, then the trace ID cut, and stderr says which', async () => {
    const r = await cli(['audit', 'search', '--limit', '3'], { env: { COLUMNS: '100' } });
    expect(r.status).toBe(0);
    for (const line of r.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    expect(r.stdout.split('\n')[0]).toMatch(/^RECEIVED \(UTC\) +TRACE ID +CONSUMER +PROVIDER +OUTCOME +STATUS$/);
    expect(r.stderr).toContain(
      '(hidden to fit the terminal: Env, Findings, Consumer ODS, Provider ODS, Duration, Error code, Interaction; --json has every field)',
    );
  });

  test('search --json is the API answer, one JSON document', async () => {
    const r = await cli(['audit', 'search', '--json', '--consumer-asid', CONSUMER_ASID, '--from', '1h', '--limit', '50']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.endsWith('}\n')).toBe(true);
    const answer = JSON.parse(r.stdout) as { transactions: Array<Record<string, unknown>>; next_cursor: unknown };
    const direct = await api(`/audit/transactions?consumer_asid=${CONSUMER_ASID}&limit=50`);
    expect(answer).toEqual(direct);
    expect(answer.transactions).toHaveLength(FORWARDED);
  });

  test('trace shows every transaction of the trace, oldest first, the refusal included; any case', async () => {
    const r = await cli(['audit', 'trace', TRACE_ID.toUpperCase()], { env: { COLUMNS: '250' } });
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^Trace ${TRACE_ID.toUpperCase()}: 4 transactions, \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d( to .*)? UTC$`));
    expect(lines[1]).toBe('');
    const rows = lines.slice(3);
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row).toContain(TRACE_ID);
    expect(rows.slice(0, 3).every((row) => /forwarded +200/.test(row))).toBe(true);
    expect(rows[3]).toMatch(/200000000360 +918999198993 .* denied +403 .* FOT_CHECK_FAILED +NOAGREE/);
    const times = rows.map((row) => row.slice(0, 19));
    expect([...times].sort()).toEqual(times);
  });

  test('trace --json: one document holding every row', async () => {
    const r = await cli(['audit', 'trace', TRACE_ID, '--json']);
    expect(r.status).toBe(0);
    const answer = JSON.parse(r.stdout) as { transactions: Array<Record<string, unknown>>; next_cursor: unknown };
    expect(answer.next_cursor).toBeNull();
    expect(answer.transactions.map((t) => t.trace_id)).toEqual([TRACE_ID, TRACE_ID, TRACE_ID, TRACE_ID]);
    expect(answer.transactions.map((t) => t.outcome).sort()).toEqual(['denied', 'forwarded', 'forwarded', 'forwarded']);
  });

  test('a trace that is not there says so, and is not an error', async () => {
    const other = randomUUID();
    const r = await cli(['audit', 'trace', other]);
    expect(r).toEqual({ status: 0, stdout: `No transactions with trace ID ${other}.\n`, stderr: '' });
  });

  test('--full shows every field of a row', async () => {
    const r = await cli(['audit', 'search', '--trace-id', TRACE_ID, '--outcome', 'denied', '--full']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^── 1 of 1 ─+\n/);
    expect(r.stdout).toMatch(/^error_code +FOT_CHECK_FAILED$/m);
    expect(r.stdout).toMatch(/^interaction_id +urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1$/m);
  });
});

describe('summary, export, access log, SQL', () => {
  test('summary: a table of groups, most transactions first, counts and times readable', async () => {
    const r = await cli(['audit', 'summary', '--group-by', 'consumer_ods,outcome', '--provider-asid', PROVIDER_ASID], { env: { COLUMNS: '200' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CONSUMER ODS +OUTCOME +TRANSACTIONS +REFUSALS +ERRORS +FIRST SEEN \(UTC\) +LAST SEEN \(UTC\)$/);
    expect(lines[1]).toMatch(
      new RegExp(`^FA565 +forwarded +${FORWARDED} +0 +0 +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d$`),
    );
    expect(lines[2]).toMatch(/^NOAGREE +denied +1 +1 +0 /);
    expect(lines).toHaveLength(3);
  });

  test('summary --json is the API answer; a bad --group-by is 2 with what it takes', async () => {
    const r = await cli(['audit', 'summary', '--group-by', 'consumer_asid', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(await api('/audit/summary?group_by=consumer_asid'));
    const bad = await cli(['audit', 'summary', '--group-by', 'patient']);
    expect(bad.status).toBe(2);
    const lines = bad.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^spine-gateway: --group-by: /);
    // Only the entry of the filter at fault, out of the API's list of every filter.
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^ {2}valid: one or two of consumer_asid, consumer_ods, .*, hour, day/)]);
  });

  test('export to a file: CSV with its manifest line; the SHA-256 checked; stderr says so', async () => {
    const file = join(tempDir('cli-export-'), 'case-42.csv');
    const r = await cli(['audit', 'export', '--consumer-asid', CONSUMER_ASID, '--output', file]);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^Exported ${FORWARDED} rows to ${file} in \\d+\\.\\d s \\([\\d,]+ rows/s\\), sha256 matches the manifest\\n$`));
    expect(r.status).toBe(0);
    expect(existsSync(`${file}.partial`)).toBe(false);
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\r\n');
    expect(lines.pop()).toBe('');
    const manifestLine = lines.pop()!;
    expect(manifestLine.startsWith('# ')).toBe(true);
    const manifest = (JSON.parse(manifestLine.slice(2)) as { export: Record<string, unknown> }).export;
    expect(manifest).toMatchObject({ format: 'csv', who: 'casey', rows: FORWARDED, truncated: false, filters: { consumer_asid: CONSUMER_ASID } });
    const body = text.slice(0, text.length - manifestLine.length - 2);
    expect(manifest.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(lines[0]).toMatch(/^event_id,/);
    expect(lines).toHaveLength(FORWARDED + 1);

    const again = await cli(['audit', 'export', '--output', file]);
    expect(again.status).toBe(2);
    expect(again.stderr).toBe(`spine-gateway: ${file} exists: give another --output, or --force to replace it\n`);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  test('export to stdout as NDJSON (--json), with the progress line when asked', async () => {
    const r = await cli(['audit', 'export', '--json', '--progress']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(traces.length + 1);
    const rows = lines.slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((row) => row.trace_id).sort()).toEqual([...traces].sort());
    expect((JSON.parse(lines[lines.length - 1]) as { export: { rows: number } }).export.rows).toBe(traces.length);
    // Not a terminal, forced on: whole lines, no carriage returns.
    expect(r.stderr).toMatch(/^exporting: \d+ rows, [\d,]+ rows\/s, \d+ s$/m);
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).toMatch(new RegExp(`^Exported ${traces.length} rows in .*sha256 matches the manifest$`, 'm'));
  });

  test('access-log: the auditors’ own uses, refused attempts included', async () => {
    await cli(['audit', 'search', '--token', 'not-a-token-at-all']);
    // The access log is written after each answer, through a queue: wait for the refused search to show.
    let r: Run = { status: null, stdout: '', stderr: '' };
    await waitFor(
      async () => / search +401 /.test((r = await cli(['audit', 'access-log', '--limit', '100'], { env: { COLUMNS: '250' } })).stdout),
      10_000,
      'the 401 in the access log',
      200,
    );
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^AT \(UTC\) +WHO +ROLE +CLIENT +ACTION +STATUS +ROWS +DURATION +ASKED$/);
    expect(lines.some((l) => /casey +auditor +127\.0\.0\.1 +export +200 +12 /.test(l))).toBe(true);
    expect(lines.some((l) => / search +401 /.test(l))).toBe(true);
    const json = JSON.parse((await cli(['audit', 'access-log', '--who', 'casey', '--action', 'summary', '--json'])).stdout) as {
      entries: Array<Record<string, unknown>>;
    };
    expect(json.entries.length).toBeGreaterThan(0);
    expect(json.entries.every((e) => e.who === 'casey' && e.action === 'summary')).toBe(true);
    expect(r.stdout).not.toContain('not-a-token-at-all');
  });

  test('sql: a table with the query’s column names; the query from stdin; a refused query is 2', async () => {
    const query = 'SELECT outcome, count() AS n FROM spine_audit.transactions FINAL GROUP BY outcome ORDER BY outcome';
    const r = await cli(['audit', 'sql', query]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`outcome     n\ndenied      1\nforwarded  ${FORWARDED}\n`); // the count is a number: right-aligned
    expect(r.stderr).toMatch(/^2 rows in [\d,]+ ms\n$/);
    const piped = await cli(['audit', 'sql', '--json'], { input: query });
    expect((JSON.parse(piped.stdout) as { rows: unknown[] }).rows).toEqual([
      ['denied', 1],
      ['forwarded', FORWARDED],
    ]);
    const write = await cli(['audit', 'sql', 'DROP TABLE spine_audit.transactions']);
    expect(write.status).toBe(2);
    expect(write.stderr).toMatch(/^spine-gateway: invalid request: /);
    // Values come back as the store holds them: control characters never reach the terminal.
    const evil = await cli(['audit', 'sql', "SELECT concat('a', char(27), '[2J', char(7)) AS evil"]);
    expect(evil.status).toBe(0);
    expect(evil.stdout).toBe('evil\na\ufffd[2J\ufffd\n');
  });
});

/** One statement on a store the gateway is not running on, mutations waited for (as verify's own tests change data behind its back). */
async function tamper(store: AuditStore, sql: string): Promise<void> {
  const client = (store as unknown as { client: { command(q: { query: string; clickhouse_settings: Record<string, string> }): Promise<unknown> } }).client;
  await client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } });
}

describe('verify', () => {
  // A gateway of its own, sealing every second, whose store is changed behind its back while it is stopped.
  let vgw: ChildGateway | null = null;
  const dataDir = join(tempDir('cli-verify-'), 'data');
  const start = async () => {
    vgw = await runGateway(directoryYaml({ metadata: provider.root }), {
      AUDIT_ENABLED: 'true',
      DATA_DIR: dataDir,
      AUDIT_SEAL_PERIOD_MS: '1000',
      LOG_LEVEL: 'info',
    });
    return { SPINE_GATEWAY_ADMIN_URL: `http://127.0.0.1:${vgw.adminPort}`, SPINE_GATEWAY_TOKEN: undefined };
  };
  const stop = async () => {
    vgw?.kill('SIGTERM');
    await vgw?.exited;
    vgw = null;
  };
  afterAll(stop);
  const SENT = 5;

  test('an untouched trail: Intact, exit 0, with what was checked', async () => {
    const env = await start();
    for (let i = 0; i < SENT; i++) {
      expect((await send(vgw!.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': randomUUID() }) })).status).toBe(200);
    }
    // Shipped and sealed (a period a second): every record checked, none waiting for its seal.
    await waitFor(
      async () => {
        const r = await cli(['audit', 'verify', '--json'], { env });
        const v = JSON.parse(r.stdout || '{}') as { records_checked?: number; records_unsealed?: number };
        return r.status === 0 && (v.records_checked ?? 0) >= SENT && v.records_unsealed === 0;
      },
      30_000,
      'the traffic sealed',
      500,
    );
    const r = await cli(['audit', 'verify', '--progress'], { env });
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Intact: every record in range matches its sealed, signed period');
    expect(lines).toContainEqual('  range    the start to now UTC');
    expect(lines).toContainEqual(`  records  ${SENT} checked`);
    expect(lines.some((l) => /^ {2}periods {2}\d+ checked$/.test(l))).toBe(true);
    expect(lines.some((l) => /^ {2}key id {3}[0-9a-f]{16}$/.test(l))).toBe(true);
    // Not a terminal, forced on: the time passing, then the rate.
    expect(r.stderr).toMatch(/^verifying… \d+ s\n\(\d+\.\d s, [\d,]+ rows\/s\)\n$/);
  }, 60_000);

  test('a row altered behind the gateway’s back: BROKEN, exit 1, the first break named', async () => {
    const env = { SPINE_GATEWAY_ADMIN_URL: `http://127.0.0.1:${vgw!.adminPort}`, SPINE_GATEWAY_TOKEN: undefined };
    const rows = (JSON.parse((await cli(['audit', 'search', '--json'], { env })).stdout) as { transactions: Array<{ event_id: string }> }).transactions;
    const victim = rows[2].event_id;
    await stop();
    const store = new AuditStore({ url: undefined, dataDir, manageSchema: false, retentionDays: 3650, timeoutMs: 10_000 });
    try {
      await tamper(store, `ALTER TABLE ${store.database}.transactions UPDATE status = 299 WHERE event_id = toUUID('${victim}')`);
    } finally {
      await store.close();
    }
    const after = await start();
    const r = await cli(['audit', 'verify'], { env: after });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe("BROKEN: altered, a record's content differs from what was sealed");
    expect(lines[1]).toMatch(/^ {2}first break {2}the period from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, chain [0-9a-f-]{36}$/);
    expect(lines).toContainEqual(`  event id     ${victim}`);
    const json = await cli(['audit', 'verify', '--json'], { env: after });
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'broken', first_break: { kind: 'altered', event_id: victim } });
  }, 60_000);
});

describe('exit statuses', () => {
  test('an unknown option: 2, commander names it', async () => {
    const r = await cli(['audit', 'search', '--consumer', CONSUMER_ASID]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("spine-gateway: unknown option '--consumer'\n(add --help for usage)\n");
  });

  test('an unknown command: 2, with the nearest one', async () => {
    const r = await cli(['audit', 'serch']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("spine-gateway: unknown command 'serch'\n(Did you mean search?)");
  });

  test("the API's 400: 2, its message under the option's name", async () => {
    const r = await cli(['audit', 'search', '--consumer-asid', 'not-an-asid']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe('spine-gateway: --consumer-asid: must be an ASID (digits)');
    const time = await cli(['audit', 'search', '--from', 'last tuesday']);
    expect(time.status).toBe(2);
    expect(time.stderr.split('\n')[0]).toBe('spine-gateway: --from: must be an ISO 8601 date-time, e.g. 2026-11-21T09:00:00Z');
  });

  test('nothing listening on the admin port: 3, one line saying where and what to check', async () => {
    const port = await freePort();
    const r = await cli(['audit', 'search'], { env: { SPINE_GATEWAY_ADMIN_URL: `http://127.0.0.1:${port}` } });
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `spine-gateway: cannot reach the gateway's admin API at http://127.0.0.1:${port} (ECONNREFUSED): is the gateway running, and is --admin-url (or SPINE_GATEWAY_ADMIN_URL) its admin port?\n`,
    );
  });

  test('the proxy port given for the admin port: 3, and says so', async () => {
    const r = await cli(['audit', 'search', '--admin-url', `http://127.0.0.1:${gw.proxyPort}`]);
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(
      `spine-gateway: http://127.0.0.1:${gw.proxyPort} answered 400 without the admin API's JSON: is --admin-url the gateway's admin port (not its proxy port)?\n`,
    );
  });

  test('a wrong token: 3, and the token is never printed', async () => {
    const wrong = 'wrong-token-5a5a5a5a5a';
    const r = await cli(['audit', 'search', '--token', wrong]);
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(`spine-gateway: the gateway at ${adminUrl} refused the token (401): it is not one of ADMIN_TOKENS_FILE's\n`);
    const fromEnv = await cli(['audit', 'trace', TRACE_ID], { env: { SPINE_GATEWAY_TOKEN: wrong } });
    expect(fromEnv.status).toBe(3);
    for (const out of [r, fromEnv]) expect(out.stdout + out.stderr).not.toContain(wrong);
  });

  test('no token: 3, saying how to give one', async () => {
    const r = await cli(['audit', 'search'], { env: { SPINE_GATEWAY_TOKEN: undefined } });
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(`spine-gateway: the gateway at ${adminUrl} needs an auditor token: set SPINE_GATEWAY_TOKEN, or give --token-file FILE\n`);
  });

  test('a token of another role (403): 3, with the gateway’s reason', async () => {
    const r = await cli(['audit', 'trace', TRACE_ID], { env: { SPINE_GATEWAY_TOKEN: METRICS_TOKEN } });
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(
      `spine-gateway: the gateway at ${adminUrl} refused the token (403): this needs a token with the role auditor; "prometheus" has metrics\n`,
    );
    expect(r.stderr).not.toContain(METRICS_TOKEN);
  });

  test('--token-file works, and a token a header cannot carry is refused without echoing it', async () => {
    const file = join(tempDir('cli-token-'), 'token');
    writeFileSync(file, `${AUDITOR_TOKEN}\n`);
    const ok = await cli(['audit', 'search', '--limit', '1', '--json', '--token-file', file], { env: { SPINE_GATEWAY_TOKEN: undefined } });
    expect(ok.status).toBe(0);
    const bad = 'secret\r\nX-Injected: 1';
    const r = await cli(['audit', 'search', '--token', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'spine-gateway: the token from --token is empty or has characters an HTTP header cannot carry (spaces, line breaks, non-ASCII); admin tokens are printable ASCII\n',
    );
  });

  test('help never shows the token from the environment', async () => {
    const r = await cli(['audit', 'search', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--consumer-asid <asid>');
    expect(r.stdout).toContain('$SPINE_GATEWAY_TOKEN');
    expect(r.stdout + r.stderr).not.toContain(AUDITOR_TOKEN);
  });
});

describe('replay-dead-letters', () => {
  /** A dead-letter file as the shipper leaves it: one final record in the spool's framing. */
  function deadLetter(dataDir: string, traceId: string): void {
    const t = new Transaction('GET', '127.0.0.1');
    Object.assign(t, {
      traceId,
      consumerAsid: CONSUMER_ASID,
      providerAsid: PROVIDER_ASID,
      interactionId: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
    });
    t.finish('forwarded', 200);
    mkdirSync(join(dataDir, 'dead-letter'), { recursive: true });
    writeFileSync(
      join(dataDir, 'dead-letter', '00000001.seg'),
      encodeRecord(Buffer.from(encodeAuditRecord(t, 2, { instance: 'cli-test', environment: 'test' }))),
    );
  }

  test('inserts the files into the store and deletes them; the gateway then finds the row', async () => {
    const dataDir = join(tempDir('cli-replay-'), 'data');
    const trace = randomUUID();
    deadLetter(dataDir, trace);
    const r = await cli(['audit', 'replay-dead-letters'], { env: { DATA_DIR: dataDir }, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('replayed 00000001.seg: 1 records\n');
    expect(r.status).toBe(0);
    expect(readdirSync(join(dataDir, 'dead-letter'))).toEqual([]);
    const again = await cli(['audit', 'replay-dead-letters'], { env: { DATA_DIR: dataDir } });
    expect(again).toEqual({ status: 0, stdout: `no dead-letter files in ${join(dataDir, 'dead-letter')}\n`, stderr: '' });

    const second = await runGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', DATA_DIR: dataDir, LOG_LEVEL: 'info' });
    try {
      const found = await cli(['audit', 'trace', trace, '--json'], {
        env: { SPINE_GATEWAY_ADMIN_URL: `http://127.0.0.1:${second.adminPort}`, SPINE_GATEWAY_TOKEN: undefined },
      });
      expect(found.status).toBe(0);
      expect((JSON.parse(found.stdout) as { transactions: Array<Record<string, unknown>> }).transactions).toMatchObject([
        { trace_id: trace, outcome: 'forwarded', gateway_instance: 'cli-test' },
      ]);
    } finally {
      second.kill('SIGTERM');
      await second.exited;
    }
  }, 90_000);

  test('with the gateway running on that DATA_DIR: 1, and the reason; the file is kept', async () => {
    const dataDir = join(gw.dir, 'data');
    deadLetter(dataDir, randomUUID());
    const r = await cli(['audit', 'replay-dead-letters'], { env: { DATA_DIR: dataDir } });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `spine-gateway: DATA_DIR ${dataDir} is in use by a gateway (pid ${gw.pid}): stop it first, since the embedded engine opens DATA_DIR/clickhouse in one process at a time\n`,
    );
    expect(existsSync(join(dataDir, 'dead-letter', '00000001.seg'))).toBe(true);
    expect(readFileSync(join(dataDir, 'dead-letter', '00000001.seg')).length).toBeGreaterThan(0);
  });
});

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCliInProcess, type CliRun } from '../helpers/cli-kit';
import { searchUntil } from '../helpers/audit-kit';
import {
  CONSUMER_ASID,
  directoryYaml,
  freePort,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  tempDir,
  waitFor,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * The command line's commands run in this process (main(), as the bin calls it) against an
 * in-process gateway: the same paths as test/system/cli.test.ts, which runs the built bin
 * as a person would, here where coverage sees them. Output is what the commands write to
 * process.stdout and process.stderr; the exit status is process.exitCode.
 */
let provider: TestProvider;
let gw: RunningGateway;
const TRACE = randomUUID();

function run(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCliInProcess(args, { SPINE_GATEWAY_ADMIN_URL: `http://127.0.0.1:${gw.adminPort}`, COLUMNS: '200', SPINE_GATEWAY_TOKEN: undefined, ...env });
}

beforeAll(async () => {
  provider = await startProvider(okHandler());
  // JWT_CHECK off: the test kit's token breaks most rules, and the tables here are about the other columns.
  gw = await startGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', JWT_CHECK: 'off' });
  for (let i = 0; i < 3; i++) await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': TRACE }) });
  await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': '200000000360' }) });
  await searchUntil(gw.adminPort, 'limit=10', (rows) => rows.length >= 4);
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await provider?.close();
});

describe('spine-gateway in process', () => {
  test('search, trace and their --json', async () => {
    const table = await run(['audit', 'search', '--consumer-asid', CONSUMER_ASID, '--limit', '2']);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^RECEIVED \(UTC\) +TRACE ID +CONSUMER/);
    expect(table.stderr).toMatch(/^More rows: the same command with --cursor /);
    const full = await run(['audit', 'search', '--trace-id', TRACE, '--limit', '1', '--full']);
    expect(full.stdout).toMatch(/^── 1 of 1 ─+\n/);
    const trace = await run(['audit', 'trace', TRACE]);
    expect(trace.stdout).toContain(`Trace ${TRACE}: 3 transactions`);
    const json = JSON.parse((await run(['audit', 'trace', TRACE, '--json'])).stdout) as { transactions: unknown[] };
    expect(json.transactions).toHaveLength(3);
    const none = await run(['audit', 'search', '--trace-id', randomUUID()]);
    expect(none.stdout).toBe('No transactions match.\n');
  });

  test('summary, export, verify, access log and SQL', async () => {
    const summary = await run(['audit', 'summary', '--group-by', 'consumer_ods,day']);
    expect(summary.status).toBe(0);
    expect(summary.stdout).toMatch(/^CONSUMER ODS +DAY \(UTC\) +TRANSACTIONS/);
    expect(summary.stdout).toMatch(/^FA565 +\d{4}-\d\d-\d\d +3 +0 +0 /m);

    const file = join(tempDir('cli-export-'), 'rows.ndjson');
    const exported = await run(['audit', 'export', '--output', file, '--progress', '--trace-id', TRACE]);
    expect(exported.status).toBe(0);
    expect(exported.stderr).toMatch(/Exported 3 rows to .*rows\.ndjson in .*sha256 matches the manifest\n$/);
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).toHaveLength(4);
    const toStdout = await run(['audit', 'export', '--format', 'csv', '--trace-id', TRACE]);
    expect(toStdout.stdout.split('\r\n').filter(Boolean)).toHaveLength(5); // header, 3 rows, manifest

    const verify = await run(['audit', 'verify', '--progress']);
    expect([0, 1]).toContain(verify.status);
    expect(verify.stdout).toMatch(/^(Intact|BROKEN)/);
    expect(verify.stderr).toMatch(/^verifying… \d+ s\n/);

    // The access log is written after each answer, through a queue: wait for the exports to show.
    let log: CliRun = { status: -1, stdout: '', stderr: '' };
    await waitFor(
      async () => (log = await run(['audit', 'access-log', '--action', 'export'])).stdout.startsWith('AT'),
      10_000,
      'the exports in the access log',
      200,
    );
    expect(log.status).toBe(0);
    expect(log.stdout).toMatch(/^AT \(UTC\) +WHO/);
    expect(log.stdout).toMatch(/ export +200 +3 /);

    const sql = await run(['audit', 'sql', 'SELECT count() AS n FROM spine_audit.transactions FINAL']);
    expect(sql.status).toBe(0);
    expect(sql.stdout).toBe('n\n4\n');
    expect(sql.stderr).toMatch(/^1 row in /);
  });

  test('exit statuses: bad usage 2, unreachable 3, help 0', async () => {
    expect((await run(['audit', 'search', '--nope'])).status).toBe(2);
    const bad = await run(['audit', 'search', '--consumer-asid', 'x']);
    expect([bad.status, bad.stderr.split('\n')[0]]).toEqual([2, 'spine-gateway: --consumer-asid: must be an ASID (digits)']);
    const port = await freePort();
    const down = await run(['audit', 'search'], { SPINE_GATEWAY_ADMIN_URL: `http://127.0.0.1:${port}` });
    expect(down.status).toBe(3);
    const help = await run(['audit', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Exit status: 0 done, 1 verify found a break, 2 bad usage');
    expect((await run(['audit', 'export', '--output', join(tempDir('cli-x-'), 'no', 'such', 'dir.csv')])).status).toBe(2);
  });
});

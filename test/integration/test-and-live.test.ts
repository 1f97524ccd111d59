/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers, read by shape in the assertions */
import { randomUUID } from 'node:crypto';
import { runCliInProcess, type CliRun } from '../helpers/cli-kit';
import { JWT_RULES } from '../../src/check';
import { schemaReady, searchUntil } from '../helpers/audit-kit';
import { METADATA, PROVIDER_ASID, okHandler, send, sspHeaders, startGateway, startProvider, type RunningGateway, type TestProvider } from '../helpers/test-kit';

/**
 * Test and live apart (README "Investigations"), on a real gateway whose directory has a
 * live and a test consumer: the record's environment is its consumer's, and search,
 * summary and the command line tell them apart. Findings: the checks that write them are
 * other work, so records with findings are put into the real store here (as the
 * investigations tests do), in a window of their own; every count is exact.
 */
const LIVE = '200000000501';
const TEST = '200000000502';
const UNKNOWN = '123456789012';
const WINDOW = 'from=2026-11-15T00:00:00Z&to=2026-11-16T00:00:00Z';
const FINDINGS_TRACE = randomUUID();

let provider: TestProvider;
let gw: RunningGateway;
let admin: string;
let started: string;

function directory(root: string): string {
  return `consumers:
  - asid: "${LIVE}"
    ods: "L0001"
    interactions: [${METADATA}]
    environment: live
  - asid: "${TEST}"
    ods: "T0001"
    interactions: [${METADATA}]
    environment: test
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${root}
        interactions: [${METADATA}]
agreements:
  - id: NDSA
    consumers: ["L0001", "T0001"]
    providers: "*"
`;
}

/** A stored record of the findings window, as the gateway writes one (the keys the search reads). */
function record(over: Record<string, unknown>): string {
  return JSON.stringify({
    event_id: randomUUID(),
    version: 2,
    trace_id: randomUUID(),
    received_at: '2026-11-15T09:00:00.000Z',
    completed_at: '2026-11-15T09:00:00.040Z',
    duration_ms: 40,
    consumer_asid: TEST,
    consumer_ods: 'T0001',
    provider_asid: PROVIDER_ASID,
    provider_ods: 'A20047',
    interaction_id: METADATA,
    method: 'GET',
    status: 200,
    outcome: 'forwarded',
    environment: 'test',
    jwt_findings: [],
    interaction_findings: [],
    ...over,
  });
}

async function api(path: string): Promise<{ status: number; json: any }> {
  const r = await send(`${admin}${path}`);
  return { status: r.status, json: JSON.parse(r.body.toString()) };
}

/** The command line in this process (main(), as the bin calls it), against this gateway's admin port. */
function cli(args: string[]): Promise<CliRun> {
  return runCliInProcess(args, { SPINE_GATEWAY_ADMIN_URL: admin, COLUMNS: '250', SPINE_GATEWAY_TOKEN: undefined });
}

beforeAll(async () => {
  provider = await startProvider(okHandler());
  gw = await startGateway(
    directory(provider.root),
    {
      AUDIT_ENABLED: 'true',
      AUDIT_BATCH_MAX_AGE_MS: '50',
      ENVIRONMENT: 'local',
      INTERACTION_CHECK: 'enforce',
      // The test kit's token breaks most JWT rules: off, so the records' only findings are the ones this suite inserts or provokes.
      JWT_CHECK: 'off',
    },
    { store: 'inline' },
  );
  admin = `http://127.0.0.1:${gw.adminPort}`;
  started = new Date(Date.now() - 1000).toISOString();
  const from = (asid: string, n: number, status: number) =>
    Promise.all(
      Array.from({ length: n }, async () =>
        expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': asid, 'Ssp-TraceID': randomUUID() }) })).status).toBe(
          status,
        ),
      ),
    );
  await from(LIVE, 3, 200);
  await from(TEST, 2, 200);
  await from(UNKNOWN, 1, 403);
  // The interaction check (enforce, the default; test-kit turns it off): a POST under the metadata read is refused, and its record says why.
  const post = await send(gw.url(`${provider.root}/metadata`), {
    method: 'POST',
    headers: sspHeaders({ 'Ssp-From': TEST, 'Ssp-TraceID': randomUUID() }),
    body: '{}',
  });
  expect([post.status, post.body.toString().includes('INTERACTION_MISMATCH')]).toEqual([400, true]);
  await searchUntil(gw.adminPort, `from=${started}&limit=100`, (rows) => rows.length === 7 && rows.every((r) => r.outcome !== 'in_flight'), 20_000);
  const store = gw.gateway.audit!.store!;
  await schemaReady(store);
  await store.insertLines(
    [
      record({ trace_id: FINDINGS_TRACE, jwt_findings: ['JWT_EXPIRED', 'JWT_SUB_MISMATCH'] }),
      record({
        trace_id: FINDINGS_TRACE,
        received_at: '2026-11-15T09:00:01.000Z',
        outcome: 'denied',
        status: 400,
        error_code: 'INTERACTION_MISMATCH',
        method: 'POST',
        interaction_findings: ['INTERACTION_METHOD'],
      }),
      record({ received_at: '2026-11-15T10:00:00.000Z', jwt_findings: ['JWT_EXPIRED'] }),
      record({ received_at: '2026-11-15T11:00:00.000Z', consumer_asid: LIVE, consumer_ods: 'L0001', environment: 'live' }),
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await provider?.close();
});

describe('test and live, apart', () => {
  test("each record carries its consumer's environment (ENVIRONMENT for one the directory does not know); search and summary filter on it", async () => {
    const rows = (await api(`/audit/transactions?from=${started}&environment=test`)).json.transactions;
    expect(rows.map((r: any) => [r.consumer_asid, r.environment, r.outcome])).toEqual([
      [TEST, 'test', 'denied'],
      [TEST, 'test', 'forwarded'],
      [TEST, 'test', 'forwarded'],
    ]);
    expect((await api(`/audit/transactions?from=${started}&environment=live`)).json.transactions.map((r: any) => r.consumer_asid)).toEqual([LIVE, LIVE, LIVE]);
    expect((await api(`/audit/transactions?from=${started}&environment=local`)).json.transactions.map((r: any) => r.consumer_asid)).toEqual([UNKNOWN]);
    const summary = (await api(`/audit/summary?group_by=environment,consumer_asid&from=${started}`)).json;
    expect(summary.groups.map((g: any) => [g.key.environment, g.key.consumer_asid, g.transactions, g.refusals])).toEqual([
      ['live', LIVE, 3, 0],
      ['test', TEST, 3, 1],
      ['local', UNKNOWN, 1, 1],
    ]);
  });

  test('a real refusal by the interaction check: its finding in the record, the filter, the summary and the metrics, by environment', async () => {
    const found = (await api(`/audit/transactions?from=${started}&interaction_finding=INTERACTION_METHOD`)).json.transactions;
    expect(found.map((r: any) => [r.consumer_asid, r.environment, r.method, r.error_code, r.interaction_findings])).toEqual([
      [TEST, 'test', 'POST', 'INTERACTION_MISMATCH', ['INTERACTION_METHOD']],
    ]);
    const groups = (await api(`/audit/summary?group_by=interaction_finding,environment&from=${started}`)).json.groups;
    expect(groups.map((g: any) => [g.key.interaction_finding, g.key.environment, g.transactions, g.refusals])).toEqual([
      ['', 'live', 3, 0],
      ['', 'test', 2, 0],
      ['', 'local', 1, 1],
      ['INTERACTION_METHOD', 'test', 1, 1],
    ]);
    const metrics = (await send(`${admin}/metrics`)).body.toString();
    expect(metrics).toContain('spine_gateway_interaction_findings_total{finding="INTERACTION_METHOD"} 1');
    expect(metrics).toContain(
      `spine_gateway_requests_total{interaction="${METADATA}",provider_asid="${PROVIDER_ASID}",status_class="4xx",outcome="denied",environment="test"} 1`,
    );
  });

  test('findings: filters and the summary by finding, in the API', async () => {
    const expired = (await api(`/audit/transactions?${WINDOW}&jwt_finding=JWT_EXPIRED`)).json.transactions;
    expect(expired.map((r: any) => r.jwt_findings)).toEqual([['JWT_EXPIRED'], ['JWT_EXPIRED', 'JWT_SUB_MISMATCH']]);
    expect((await api(`/audit/transactions?${WINDOW}&interaction_finding=INTERACTION_METHOD`)).json.transactions).toHaveLength(1);
    expect((await api(`/audit/transactions?${WINDOW}&jwt_finding=JWT_EXPIRED&environment=live`)).json.transactions).toHaveLength(0);
    const bad = await api(`/audit/transactions?jwt_finding=EXPIRED`);
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ filter: 'jwt_finding' });
    expect(bad.json.message).toContain('JWT_EXPIRED');
    const byFinding = (await api(`/audit/summary?group_by=jwt_finding,environment&${WINDOW}`)).json.groups;
    expect(byFinding.map((g: any) => [g.key.jwt_finding, g.key.environment, g.transactions])).toEqual([
      ['JWT_EXPIRED', 'test', 2],
      ['', 'live', 1],
      ['', 'test', 1],
      ['JWT_SUB_MISMATCH', 'test', 1],
    ]);
  });

  test('the command line: --environment, --jwt-finding, --interaction-finding; findings in the table, in --full and under a trace', async () => {
    const tests = await cli(['audit', 'search', '--from', started, '--environment', 'test']);
    expect(tests.status).toBe(0);
    const lines = tests.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/ENV +FINDINGS$/);
    expect(lines.slice(1).map((l) => / (test|live|local)\b/.exec(l)?.[1])).toEqual(['test', 'test', 'test']);
    // The refused POST, newest: its interaction finding in the last column.
    expect(lines[1]).toMatch(/ denied +400 .* test +INTERACTION_METHOD$/);

    const expired = await cli(['audit', 'search', '--from', '2026-11-15', '--to', '2026-11-16', '--jwt-finding', 'JWT_EXPIRED']);
    expect(expired.status).toBe(0);
    expect(expired.stdout.trimEnd().split('\n').slice(1)).toEqual([
      expect.stringMatching(/ test +JWT_EXPIRED$/),
      expect.stringMatching(/ test +JWT_EXPIRED JWT_SUB_MISMATCH$/),
    ]);
    const method = await cli(['audit', 'search', '--from', '2026-11-15', '--to', '2026-11-16', '--interaction-finding', 'INTERACTION_METHOD', '--json']);
    expect(JSON.parse(method.stdout).transactions.map((r: any) => r.interaction_findings)).toEqual([['INTERACTION_METHOD']]);
    const bad = await cli(['audit', 'search', '--jwt-finding', 'expired']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.split('\n')[0]).toMatch(/^spine-gateway: --jwt-finding: must be a JWT rule code: one of JWT_MISSING, /);

    // A trace: the codes in the table, and under it what each one expected, in words.
    const trace = await cli(['audit', 'trace', FINDINGS_TRACE]);
    expect(trace.status).toBe(0);
    expect(trace.stdout).toMatch(/ JWT_EXPIRED JWT_SUB_MISMATCH\n/);
    expect(trace.stdout).toMatch(/ INTERACTION_METHOD\n/);
    expect(trace.stdout).toContain(`\nFindings (what the gateway's checks expected; README "JWT check" and "Interaction check"):\n`);
    expect(trace.stdout).toContain(`  JWT_EXPIRED         expected ${JWT_RULES.JWT_EXPIRED} (1 of 2)\n`);
    expect(trace.stdout).toContain("  INTERACTION_METHOD  expected the interaction's method (1 of 2)\n");
    const full = await cli(['audit', 'trace', FINDINGS_TRACE, '--full']);
    expect(full.stdout).toMatch(/^jwt_findings +JWT_EXPIRED, JWT_SUB_MISMATCH$/m);
    expect(full.stdout).toMatch(/^interaction_findings +\(none\)$/m);
    expect(full.stdout).toMatch(/^interaction_findings +INTERACTION_METHOD$/m);
    // A trace without findings has no legend.
    const clean = (await api(`/audit/transactions?from=${started}&environment=live&limit=1`)).json.transactions[0];
    expect((await cli(['audit', 'trace', clean.trace_id])).stdout).not.toContain('Findings (');

    const summary = await cli(['audit', 'summary', '--group-by', 'jwt_finding', '--from', '2026-11-15', '--to', '2026-11-16']);
    expect(summary.status).toBe(0);
    expect(summary.stdout).toMatch(/^JWT FINDING +TRANSACTIONS/);
    expect(summary.stdout).toMatch(/^\(none\) +2 /m);
    expect(summary.stdout).toMatch(/^JWT_EXPIRED +2 /m);
  });
});

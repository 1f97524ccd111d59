import { directoryYaml, okHandler, send, startGateway, startProvider, type RunningGateway, type TestProvider, adminTokensFile } from '../helpers/test-kit';
import { schemaReady } from '../helpers/audit-kit';

const AUDITOR = 'alice-5b7e22c4d1';
let provider: TestProvider;
let gw: RunningGateway;
let admin: string;

const sql = async (text: unknown) => {
  const r = await send(`${admin}/audit/sql`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${AUDITOR}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ sql: text }),
  });
  return { status: r.status, body: r.body.toString() };
};

beforeAll(async () => {
  provider = await startProvider(okHandler());
  const tokens = adminTokensFile([{ name: 'alice', role: 'auditor', token: AUDITOR }]);
  gw = await startGateway(
    directoryYaml({ metadata: provider.root }),
    {
      AUDIT_ENABLED: 'true',
      AUDIT_BATCH_MAX_AGE_MS: '50',
      ADMIN_TOKENS_FILE: tokens,
      AUDIT_SQL_MAX_ROWS: '5',
      AUDIT_SQL_TIMEOUT_MS: '500',
    },
    { store: 'inline' },
  );
  admin = `http://127.0.0.1:${gw.adminPort}`;
  await schemaReady(gw.gateway.audit!.store!);
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await provider?.close();
});

/**
 * Bypasses a red team found in the auditor SQL guard (each expects the guard to refuse; they fail while the hole is open).
 * EXPLAIN AST prints names raw: a quoted name holding "\n" plus 4 spaces adds a line that
 * parseAst takes for a second child of TablesInSelectQuery (depth 4), which checkAst never
 * looks at; every node printed after it (file(), system.*, SETTINGS, url()) hangs under it
 * and is never checked.
 */
const INJECT = '`a\n    X`';
const bypass: Array<[string, string]> = [
  ['scalar file() reads a host file', `SELECT 1 AS ${INJECT}, file('/etc/hostname') AS h`],
  ['same with a double-quoted alias', `SELECT 1 AS "a\n    X", file('/etc/hostname') AS h`],
  ['system tables', `SELECT 1 AS ${INJECT}, * FROM system.tables`],
  ['other databases listed', `SELECT 1 AS ${INJECT}, (SELECT groupArray(name) FROM system.databases) AS d`],
  ['inner SETTINGS lift readonly', `SELECT 1 AS ${INJECT}, getSetting('readonly') AS r SETTINGS readonly=0, max_execution_time=100`],
  [
    'network via url() once readonly=0',
    `SELECT 1 AS ${INJECT}, * FROM (SELECT * FROM url('__ADMIN__/health', 'LineAsString', 'l String') SETTINGS readonly=0) SETTINGS readonly=0`,
  ],
];

test.each(bypass)(
  'refused: %s',
  async (_name, text) => {
    const r = await sql(text.split('__ADMIN__').join(admin));
    expect(r.status).toBe(400);
    expect(r.body).not.toMatch(/ClickHouse refused|"rows"/);
  },
  15_000,
);

test('refused: nested comments hide a fake CTE name from ClickHouse, so an unqualified table of the default database passes the guard', async () => {
  // sqlShape ended the comment at the first */; ClickHouse nests /* */ comments.
  const r = await sql('/* /* */ , secrets AS ( */ SELECT * FROM secrets');
  expect(r.body).not.toMatch(/ClickHouse refused/);
}, 15_000);

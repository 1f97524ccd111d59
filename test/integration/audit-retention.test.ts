import { randomUUID } from 'node:crypto';
import { encodeAuditRecord } from '../../src/audit';
import { AuditStore } from '../../src/clickhouse';
import { loadSettings } from '../../src/config';
import { Transaction } from '../../src/transaction';
import { tempDir } from '../helpers/test-kit';

/**
 * Retention on the real embedded engine (README: "Schema and retention"): the TTL rules
 * AUDIT_RETENTION_DAYS and AUDIT_TEST_RETENTION_DAYS set at start, applied by a merge to
 * rows the real encoder wrote. Rows of test consumers older than the test retention go;
 * live rows of the same age stay.
 */
const DAY = 86_400_000;
const CONTEXT = { instance: 'gw-retention', environment: 'local' };
let store: AuditStore;
const dataDir = tempDir('retention-');

function settings(env: Record<string, string>) {
  return loadSettings({ DATA_DIR: dataDir, ...env });
}

/** A final record as the gateway writes it, received `ageDays` ago by a consumer of `environment` ('' : unknown consumer, ENVIRONMENT stands). */
function record(ageDays: number, environment: string, context = CONTEXT): { line: string; trace: string } {
  const tx = new Transaction('GET', '127.0.0.1');
  tx.traceId = randomUUID();
  tx.consumerAsid = '200000000359';
  tx.environment = environment;
  (tx as { receivedAt: number }).receivedAt = Date.now() - ageDays * DAY;
  tx.finish('forwarded', 200);
  tx.completedAt = tx.receivedAt + 5;
  return { line: encodeAuditRecord(tx, 2, context), trace: tx.traceId };
}

async function traces(): Promise<Set<string>> {
  const rows = await store.queryRows<{ trace_id: string }>(`SELECT trace_id FROM ${store.table}`, {});
  return new Set(rows.map((r) => r.trace_id));
}

async function ttl(): Promise<string> {
  const [row] = await store.queryRows<{ q: string }>(
    `SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = 'transactions'`,
    { db: store.database },
  );
  return /TTL (.*?)(?: SETTINGS|$)/s.exec(row.q)?.[1] ?? '';
}

afterEach(() => store?.close());

test('the two TTL rules are set at start from the settings (defaults 3000 and 90), and changed at the next start', async () => {
  store = AuditStore.fromSettings(settings({}));
  await store.prepare();
  expect(await ttl()).toBe("toDateTime(received_at) + toIntervalDay(3000), toDateTime(received_at) + toIntervalDay(90) WHERE environment = 'test'");
  await store.close();
  store = AuditStore.fromSettings(settings({ AUDIT_RETENTION_DAYS: '400', AUDIT_TEST_RETENTION_DAYS: '7' }));
  await store.prepare();
  expect(await ttl()).toBe("toDateTime(received_at) + toIntervalDay(400), toDateTime(received_at) + toIntervalDay(7) WHERE environment = 'test'");
});

test("a merge deletes test consumers' rows past AUDIT_TEST_RETENTION_DAYS; live rows of the same age stay", async () => {
  store = AuditStore.fromSettings(settings({ AUDIT_RETENTION_DAYS: '3000', AUDIT_TEST_RETENTION_DAYS: '30' }));
  await store.prepare();
  await store.queryText(`TRUNCATE TABLE ${store.table}`, 'TabSeparatedRaw');
  const gone = [
    record(31, 'test'),
    record(400, 'test'),
    record(31, '', { instance: 'gw-test', environment: 'test' }), // an unknown consumer on a gateway whose ENVIRONMENT is test
    record(3001, 'live'), // past the general retention
  ];
  const kept = [
    record(29, 'test'),
    record(0, 'test'),
    record(31, 'live'),
    record(400, 'live'),
    record(31, ''), // ENVIRONMENT local
    record(2990, 'live'),
  ];
  await store.insertLines([...gone, ...kept].map((r) => r.line).join('\n'));
  // Merges apply TTL rules: forced here rather than waited for (merge_with_ttl_timeout is hours).
  await store.queryText(`OPTIMIZE TABLE ${store.table} FINAL`, 'TabSeparatedRaw');
  const left = await traces();
  expect({ gone: gone.filter((r) => left.has(r.trace)).length, kept: kept.filter((r) => left.has(r.trace)).length }).toEqual({
    gone: 0,
    kept: kept.length,
  });
  const byEnvironment = await store.queryRows<{ environment: string; n: string }>(
    `SELECT environment, toString(count()) AS n FROM ${store.table} GROUP BY environment ORDER BY environment`,
    {},
  );
  expect(byEnvironment).toEqual([
    { environment: 'live', n: '3' },
    { environment: 'local', n: '1' },
    { environment: 'test', n: '2' },
  ]);
});

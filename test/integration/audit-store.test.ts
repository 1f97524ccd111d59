import { randomUUID } from 'node:crypto';
import { AuditStore, AuditStoreError, migrations, type AuditRow } from '../../src/clickhouse';
import { tempDir } from '../helpers/test-kit';

/** The audit store on the real embedded engine (current ClickHouse), with the real schema. */
let store: AuditStore;
beforeAll(async () => {
  store = new AuditStore({ url: undefined, dataDir: tempDir('store-'), manageSchema: true, retentionDays: 30, timeoutMs: 5000 });
  expect(await store.prepare()).toEqual(migrations.map((m) => m.version));
});
afterAll(() => store.close());

function row(overrides: Partial<AuditRow> = {}): AuditRow {
  const now = new Date().toISOString();
  return {
    event_id: randomUUID(),
    version: 2,
    trace_id: randomUUID(),
    received_at: now,
    completed_at: now,
    duration_ms: 1,
    consumer_asid: '200000000359',
    outcome: 'forwarded',
    status: 200,
    ...overrides,
  };
}
const lines = (rows: AuditRow[]) => rows.map((r) => JSON.stringify(r)).join('\n');

test('migrations apply once', async () => {
  expect(await store.prepare()).toEqual([]);
});

test('a batch inserted twice (a crash between insert and checkpoint) reads back once', async () => {
  const batch = [row(), row(), row()];
  await store.insertLines(lines(batch));
  await store.insertLines(lines(batch));
  for (const r of batch) {
    const found = await store.search({ trace_id: String(r.trace_id), limit: 10 });
    expect(found).toHaveLength(1);
  }
});

test('the final record replaces the in-flight one, in whichever order they arrive', async () => {
  const begin = row({ version: 1, outcome: 'in_flight', status: 0 });
  await store.insertLines(lines([{ ...begin, version: 2, outcome: 'forwarded', status: 200 }]));
  await store.insertLines(lines([begin]));
  const found = await store.search({ trace_id: String(begin.trace_id), limit: 10 });
  expect(found).toHaveLength(1);
  expect(found[0]).toMatchObject({ outcome: 'forwarded', status: 200 });
});

test('a row that cannot fit the table is a permanent error, with its ClickHouse code', async () => {
  const error = await store.insertLines(lines([row({ status: 'not-a-number' })])).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AuditStoreError);
  expect((error as AuditStoreError).transient).toBe(false);
});

test('search rejects nothing it builds: parameters only, even for hostile values', async () => {
  const found = await store.search({ trace_id: "x' OR 1=1 --", consumer_asid: '1', limit: 5 });
  expect(found).toEqual([]);
});

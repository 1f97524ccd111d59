import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AuditStore } from '../../src/clickhouse';
import { searchUntil } from '../helpers/audit-kit';
import { directoryYaml, okHandler, send, sspHeaders, startGateway, startProvider, waitFor, type RunningGateway, type TestProvider } from '../helpers/test-kit';

/**
 * Where the audit store runs. By default its own process (forked from dist/, also under
 * ts-jest): the gateway holds no AuditStore, /audit/* reaches the store over its Unix
 * socket, and the sealer's seals reach the table over the channel. The test seam
 * `{ store: 'inline' }` runs the same service in this process over an in-memory channel.
 */
let provider: TestProvider;
const running: RunningGateway[] = [];
beforeAll(async () => {
  provider = await startProvider(okHandler());
});
afterAll(async () => {
  for (const gw of running) await gw.stop();
  await provider.close();
});

async function traffic(gw: RunningGateway, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    ids.push(id);
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }) })).status).toBe(200);
  }
  return ids;
}

const ENV = { AUDIT_ENABLED: 'true', AUDIT_BATCH_MAX_AGE_MS: '50', AUDIT_SEAL_PERIOD_MS: '1000', LOG_LEVEL: 'info' };

test('default: the store is a child process; search through its socket, seals stored over the channel, its log lines in ours', async () => {
  const gw = await startGateway(directoryYaml({ metadata: provider.root }), ENV);
  running.push(gw);
  const audit = gw.gateway.audit!;
  expect(audit.store).toBeNull();
  const state = audit.storeState();
  expect(state.state).toBe('up');
  expect(state.pid).not.toBe(process.pid);
  await traffic(gw, 5);
  await waitFor(() => audit.stats.shipped() >= 5, 30_000, 'five records shipped by the child');
  const rows = await searchUntil(gw.adminPort, 'limit=10', (r) => r.length >= 5, 15_000);
  expect(rows).toHaveLength(5);
  await waitFor(() => audit.sealer.sealsStored > 0, 15_000, 'a seal stored through the store process');
  gw.gateway.log.flush();
  const log = readFileSync(gw.logFile, 'utf8');
  expect(log).toMatch(/"process":"store".*"msg":"audit store ready"/);
  const ready = JSON.parse((await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).body.toString());
  expect(ready.checks).toContainEqual({ name: 'audit_store', ok: true, detail: 'audit store process up' });
}, 60_000);

test("inline: the same service in this process over the in-memory channel; the AuditStore object is the test's", async () => {
  const gw = await startGateway(directoryYaml({ metadata: provider.root }), ENV, { store: 'inline' });
  running.push(gw);
  const audit = gw.gateway.audit!;
  expect(audit.store).toBeInstanceOf(AuditStore);
  expect(audit.storeState().pid).toBe(process.pid);
  await traffic(gw, 3);
  await waitFor(() => audit.stats.shipped() >= 3, 30_000, 'three records shipped inline');
  const store = audit.store!;
  const rows = await store.queryRows<{ c: string }>(`SELECT count() AS c FROM ${store.table} FINAL`, {});
  expect(Number(rows[0].c)).toBe(3);
  await searchUntil(gw.adminPort, 'limit=10', (r) => r.length === 3, 15_000);
  await waitFor(() => audit.sealer.sealsStored > 0, 15_000, 'a seal stored inline');
}, 60_000);

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { RecordContext } from '../../src/audit';
import type { AuditStore } from '../../src/clickhouse';
import { loadSettings } from '../../src/config';
import { workerSpoolDir } from '../../src/data-dir';
import { channelPair, type Channel, type FromStore, type ToStore } from '../../src/ipc';
import { AuditSpool } from '../../src/spool';
import { runStoreService, type StoreService } from '../../src/store';
import { Transaction } from '../../src/transaction';

/**
 * The audit store service with lanes, in this process over the in-memory channel (the
 * seam `{ store: 'inline' }` uses), driven by the test as the gateway or the cluster
 * primary would drive it, with the spools written by real AuditSpools in
 * `workerSpoolDir(DATA_DIR, i)`.
 */
export interface StoreHarness {
  to: Channel<ToStore, FromStore>;
  service: StoreService;
  /** Every message from the store, in the order it came. */
  messages: FromStore[];
  store: AuditStore;
}

const CONTEXT: RecordContext = { instance: 'gw-lanes', environment: 'local' };
const PUBLIC_KEY_PEM = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;

/** The settings the store gets in `init` (small batches, short waits). */
export function laneSettings(dataDir: string, env: Record<string, string> = {}) {
  return loadSettings({ DATA_DIR: dataDir, AUDIT_BATCH_MAX_AGE_MS: '20', AUDIT_BATCH_MAX_RECORDS: '40', LOG_LEVEL: 'info', ...env });
}

/** Starts the service and sends `init` (with lane 0's state when `lane0` is given: WORKERS=1). */
export async function startStore(
  dataDir: string,
  lane0?: AuditSpool,
  env: Record<string, string> = {},
  beforeInit?: (to: Channel<ToStore, FromStore>) => void,
): Promise<StoreHarness> {
  const { a, b } = channelPair<ToStore, FromStore>();
  const messages: FromStore[] = [];
  a.onMessage((m) => void messages.push(m));
  const service = runStoreService(b);
  beforeInit?.(a);
  const state = lane0 === undefined ? {} : { durableEnd: { ...lane0.writer.durableEnd }, retainFrom: null, needsRoom: false };
  a.send({ t: 'init', settings: laneSettings(dataDir, env), publicKeyPem: PUBLIC_KEY_PEM, ...state });
  return { to: a, service, messages, store: await service.store };
}

/** Opens lane `lane` (gen `gen`) on `spool` as the primary does for a worker. */
export function openLane(h: StoreHarness, lane: number, gen: number, spool: AuditSpool): void {
  h.to.send({ t: 'lane', lane, gen, durableEnd: { ...spool.writer.durableEnd }, retainFrom: null, needsRoom: false });
}

/** Tells the store where `spool`'s durable data ends now (no lane: lane 0 of init). */
export function tellDurable(h: StoreHarness, spool: AuditSpool, ref: { lane?: number; gen?: number } = {}): void {
  h.to.send({ t: 'durable', ...spool.writer.durableEnd, ...ref });
}

/**
 * Tells the store each spool's durable end every 20 ms, as the gateway's link timer does
 * (a final record becomes durable with the next group, after its write returned).
 * Returns the function that stops it.
 */
export function pumpDurable(h: StoreHarness, lanes: Array<{ spool: AuditSpool; ref?: { lane?: number; gen?: number } }>): () => void {
  const timer = setInterval(() => {
    for (const { spool, ref } of lanes) tellDurable(h, spool, ref);
  }, 20);
  return () => clearInterval(timer);
}

export function openSpool(dataDir: string, lane: number, segmentBytes = 4096): Promise<AuditSpool> {
  return AuditSpool.open({ dir: workerSpoolDir(dataDir, lane), segmentBytes, maxBytes: 1 << 30, deadlineMs: 5000, commitDelayMs: 0, context: CONTEXT }).then(
    (r) => r.spool,
  );
}

/** Begins `n` transactions in `spool` (begin records durable); finished unless `open` (left in flight). */
export async function writeTransactions(spool: AuditSpool, n: number, open = false): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const tx = new Transaction('GET', '127.0.0.1');
    tx.traceId = randomUUID();
    tx.consumerAsid = '200000000359';
    tx.providerAsid = '918999198993';
    tx.interactionId = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
    await new Promise<void>((resolve, reject) => spool.begin(tx, (err) => (err ? reject(err) : resolve())));
    ids.push(tx.eventId);
    if (open) continue;
    tx.finish('forwarded', 200);
    await new Promise<void>((resolve) => spool.finish(tx, resolve));
  }
  return ids;
}

/** How many rows each event id has with FINAL, and their versions and outcomes. */
export async function finalRows(store: AuditStore): Promise<Map<string, { rows: number; version: number; outcome: string }>> {
  const rows = await store.queryRows<{ id: string; n: string; v: string; o: string }>(
    `SELECT toString(event_id) AS id, count() AS n, max(version) AS v, any(outcome) AS o FROM ${store.table} FINAL GROUP BY id`,
    {},
  );
  return new Map(rows.map((r) => [r.id, { rows: Number(r.n), version: Number(r.v), outcome: r.o }]));
}

/** The messages of a kind, typed. */
export function ofKind<T extends FromStore['t']>(messages: readonly FromStore[], t: T): Array<Extract<FromStore, { t: T }>> {
  return messages.filter((m): m is Extract<FromStore, { t: T }> => m.t === t);
}

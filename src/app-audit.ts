import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AuditSink } from './audit';
import type { AuditStore } from './clickhouse';
import type * as StoreModuleTypes from './store';
import type { Settings } from './config';
import { DataDirInUseError, DataDirLock, LOCK_FILE } from './data-dir';
import type { Logger } from './log';
import { loadSigningKey, Sealer, type Seal, type SigningKey } from './seal';
import type { AuditStats, GatewayMetrics } from './metrics';
import { LOG_LEVELS, RpcClient, STORE_SOCKET, wireWatermark, type FromStore, type ToStore } from './ipc';
import { AuditSpool, type AuditSpoolRecovery } from './spool';
import { forkStore, inlineStore, reapStaleStore, recordStorePid, STORE_PID_FILE, StoreSupervisor, type StoreProcess, type StoreState } from './supervisor';

/**
 * Where the audit store runs: its own process (the default, everywhere), or `inline`, the
 * same service in this process over an in-memory channel: a test seam for in-process test
 * gateways that need the AuditStore object. Not a setting.
 */
export interface AuditPipelineOptions {
  store?: 'child' | 'inline';
}

type StoreModule = typeof StoreModuleTypes;

/** The store's durable end and the sealer's watermark go to the store at most this often, and only when they moved. */
const LINK_EVERY_MS = 10;
/** A seal call the store does not answer in this long fails (the sealer retries with backoff). */
const SEAL_CALL_TIMEOUT_MS = 10_000;

export interface AuditPipeline {
  readonly sink: AuditSink;
  /** The AuditStore object with the inline store (the test seam); null when the store is its own process (the default). */
  readonly store: AuditStore | null;
  /** The investigations API's Unix socket (DATA_DIR/store.sock), served by the store process. */
  readonly storeSocket: string;
  /** The store process now: up, or down and restarting (for /readyz's detail and the admin port's 503). */
  storeState(): { state: StoreState; pid?: number; restarts: number; restartInMs?: number };
  /**
   * Resolves true once the store serves the investigations API on its socket (at once if it
   * does), false after `ms`, or at once while it is down: a request at start-up waits for the
   * store to boot, one during an outage is answered 503 at once.
   */
  whenServing(ms: number): Promise<boolean>;
  readonly stats: AuditStats;
  /** The seal signing key's public half, for the verifier and GET /audit/public-key (the private key stays in the sealer). */
  readonly signing: Pick<SigningKey, 'publicKey' | 'publicKeyPem' | 'keyId'>;
  /** Seals the trail in periods (README: Tamper evidence); its `chain` is this DATA_DIR's chain id. */
  readonly sealer: Sealer;
  /**
   * The readiness check: in `closed` mode ready only while the spool takes records (the
   * gateway answers 503 otherwise); in `open` mode ready regardless (it serves, and counts
   * what it could not keep). `detail` names the cause when the spool is failing.
   */
  readiness(): { ok: boolean; detail?: string };
  start(): void;
  /** Closes the spool, seals, then stops the store process (after its current batch). */
  stop(): Promise<void>;
}

/**
 * Composes the audit flow: transaction → record → spool (durable) → shipper → ClickHouse.
 * Start-up recovers the spool and closes interrupted transactions before any traffic;
 * it never waits on ClickHouse (the shipper prepares the schema when it can).
 */
export async function buildAuditPipeline(settings: Settings, log: Logger, metrics: GatewayMetrics, options: AuditPipelineOptions = {}): Promise<AuditPipeline> {
  // One gateway per DATA_DIR, taken before anything under it is opened: a second one stops here.
  let lock: DataDirLock | null = null;
  try {
    lock = DataDirLock.acquire(settings.DATA_DIR);
  } catch (err) {
    if (err instanceof DataDirInUseError) throw err;
    // A disk that cannot take the lock cannot take audit records either: start as the
    // spool does on a failing disk (not ready in closed mode, serving in open mode).
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    log.warn(
      { code },
      `DATA_DIR ${settings.DATA_DIR}: cannot create ${LOCK_FILE} (${code}); starting without it, so a second gateway on this DATA_DIR would not be stopped`,
    );
  }
  try {
    return await openAuditPipeline(settings, log, metrics, lock, options);
  } catch (err) {
    lock?.release();
    throw err;
  }
}

async function openAuditPipeline(
  settings: Settings,
  log: Logger,
  metrics: GatewayMetrics,
  lock: DataDirLock | null,
  options: AuditPipelineOptions,
): Promise<AuditPipeline> {
  const spoolDir = join(settings.DATA_DIR, 'spool');
  const closed = settings.AUDIT_FAILURE_MODE === 'closed';
  const consequence = closed
    ? 'requests are refused with 503 AUDIT_UNAVAILABLE and /readyz is 503 (AUDIT_FAILURE_MODE=closed)'
    : 'requests are forwarded and records not kept are counted (AUDIT_FAILURE_MODE=open)';
  let backlog = 0;
  const reportRecovery = (recovery: AuditSpoolRecovery) => {
    for (const bad of recovery.badTails) {
      log.warn({ segment: bad.segment, bad_bytes: bad.badBytes }, 'audit spool: torn or corrupt tail skipped (records before it are kept)');
      metrics.spoolCorruptBytes.inc(bad.badBytes);
    }
    if (recovery.interrupted > 0)
      log.warn({ interrupted: recovery.interrupted }, 'audit spool: transactions in flight at the last stop recorded as interrupted');
    backlog += recovery.backlog;
  };
  // Tamper evidence: the key first (a bad AUDIT_SIGNING_KEY_FILE stops start-up here), then the
  // chain's last seal; the spool's recovery hands the sealer the records sealed since.
  const key = loadSigningKey(settings.AUDIT_SIGNING_KEY_FILE, settings.DATA_DIR);
  if (key.generated) log.info({ file: key.path, key_id: key.keyId }, 'audit signing key generated (mode 0600); back it up, or set AUDIT_SIGNING_KEY_FILE');
  const instance = hostname();
  const sealer = Sealer.open({ dataDir: settings.DATA_DIR, key, periodMs: settings.AUDIT_SEAL_PERIOD_MS, instance, log });
  let spool: AuditSpool | null = null;
  const opened = await AuditSpool.open({
    dir: spoolDir,
    segmentBytes: settings.AUDIT_SEGMENT_BYTES,
    maxBytes: settings.AUDIT_SPOOL_MAX_BYTES,
    deadlineMs: settings.AUDIT_WRITE_TIMEOUT_MS,
    commitDelayMs: settings.AUDIT_GROUP_COMMIT_MS,
    context: { instance, environment: settings.ENVIRONMENT },
    sealer,
    failOpen: !closed,
    // One line when an episode starts (with its cause), one if the cause changes, one when it ends.
    onHealth(health, previous) {
      const held = spool?.writer.heldRecords ?? 0;
      // Node's own messages start with the code ("ENOSPC: no space left on device, write").
      const why = health.state === 'failing' ? (health.message.startsWith(health.code) ? health.message : `${health.code}: ${health.message}`) : '';
      if (health.state === 'failing' && previous.state === 'healthy') {
        log.error({ code: health.code, held }, `audit spool not writable (${why}): ${consequence} until it recovers, which it does by itself`);
      } else if (health.state === 'failing' && previous.state === 'failing') {
        log.error({ code: health.code, previous_code: previous.code, held }, `audit spool still not writable, now ${why}`);
      } else if (previous.state === 'failing') {
        const seconds = previous.since > 0 ? Math.round((Date.now() - previous.since) / 100) / 10 : undefined;
        log.warn(
          { code: previous.code, seconds, dropped: spool?.dropped ?? 0 },
          `audit spool writable again${seconds === undefined ? '' : ` after ${seconds} s`}: held records written, requests audited as usual`,
        );
      }
      log.flush();
    },
    onDeferredRecovery: reportRecovery,
  });
  spool = opened.spool;
  if (opened.recovery !== null) reportRecovery(opened.recovery);

  // The store process (README: Processes): the shipper, ClickHouse and the investigations API.
  // This process keeps the spool writer and the sealer; the store reads the spool up to the
  // durable end it is told, and the sealer's seals reach the table through it.
  let clickhouseUp = false;
  let shipped = 0;
  let deadLettered = 0;
  let oldestUnshippedAt = 0;
  let serving = false;
  const servingWaiters = new Set<(ok: boolean) => void>();
  const setServing = (now: boolean) => {
    serving = now;
    for (const w of [...servingWaiters]) w(now);
  };
  const writer = spool.writer;
  let supervisor: StoreSupervisor | null = null;
  const rpc = new RpcClient((m) => supervisor?.send(m) ?? false, SEAL_CALL_TIMEOUT_MS);
  const sealStore = {
    insertSeals: (seals: readonly Seal[]) => rpc.call<void>({ method: 'insertSeals', seals: [...seals] }),
    latestSealPeriod: (chain: string) => rpc.call<number | null>({ method: 'latestSealPeriod', chain }),
  };
  // What the store was last told: sent again only when it moved.
  let told = { segment: -1, offset: -1, retain: null as number | null | undefined, needsRoom: false };
  const linkState = () => ({
    durableEnd: { ...writer.durableEnd },
    retainFrom: wireWatermark(sealer.retainFrom(writer.needsRoom)),
    needsRoom: writer.needsRoom,
  });
  const pushLink = () => {
    const now = linkState();
    if (now.durableEnd.segment !== told.segment || now.durableEnd.offset !== told.offset) {
      if (supervisor?.send({ t: 'durable', ...now.durableEnd })) told = { ...told, segment: now.durableEnd.segment, offset: now.durableEnd.offset };
    }
    if (now.retainFrom !== told.retain || now.needsRoom !== told.needsRoom) {
      if (supervisor?.send({ t: 'retain', from: now.retainFrom, needsRoom: now.needsRoom }))
        told = { ...told, retain: now.retainFrom, needsRoom: now.needsRoom };
    }
  };
  const onMessage = (m: FromStore) => {
    switch (m.t) {
      case 'log': {
        const level = LOG_LEVELS.includes(m.level) ? m.level : 'info';
        log[level]({ ...m.fields, process: 'store' }, m.msg);
        if (level === 'error' || level === 'fatal') log.flush();
        return;
      }
      case 'released':
        writer.released(m.bytes);
        return;
      case 'suspect':
        writer.suspect();
        return;
      case 'ready':
        clickhouseUp = true;
        sealer.storeReady(sealStore);
        return;
      case 'shipped':
        clickhouseUp = true;
        shipped += m.records;
        metrics.auditInserted(m.records, m.seconds);
        return;
      case 'failed':
        clickhouseUp = false;
        metrics.auditInsertFailed('transient');
        return;
      case 'deadLettered':
        deadLettered += m.records;
        metrics.auditInsertFailed('permanent');
        return;
      case 'skippedBadBytes':
        metrics.spoolCorruptBytes.inc(m.bytes);
        return;
      case 'unmatchedFinals':
        metrics.auditUnmatchedFinals.inc(m.records);
        return;
      case 'stats':
        oldestUnshippedAt = m.oldestUnshippedAt;
        return;
      case 'reply':
        rpc.reply(m);
        return;
      case 'serving':
        setServing(true);
        return;
      default:
        return; // fileFault, fileRecovered (logged by the store), stopped
    }
  };
  // Loaded only for the seam (the gateway process never loads the engine otherwise): a require
  // rather than import(), which stays a native ESM import in this CommonJS build and fails under ts-jest.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const inline = options.store === 'inline' ? (require('./store') as StoreModule) : null;
  let inlineAuditStore: Promise<AuditStore> | null = null;
  const pidFile = join(settings.DATA_DIR, STORE_PID_FILE);
  if (inline === null) await reapStaleStore(pidFile, log);
  const fork = (): StoreProcess => {
    const proc = forkStore(undefined, settings.DATA_DIR);
    recordStorePid(pidFile, proc.pid);
    return proc;
  };
  const launch = (): StoreProcess =>
    inline === null
      ? fork()
      : inlineStore(inline.runStoreService, (service) => {
          inlineAuditStore ??= (service as ReturnType<typeof inline.runStoreService>).store;
        });
  supervisor = new StoreSupervisor({
    launch,
    log,
    init(): ToStore {
      // No store runs now: a killed one may have deleted segments it never reported (`released`).
      try {
        const off = writer.recount();
        if (off) log.warn({ bytes: off }, 'audit spool: bytes counted anew from disk at the store start (a killed store deleted segments it had not reported)');
      } catch (err) {
        log.warn({ code: (err as NodeJS.ErrnoException).code ?? 'ERROR' }, 'audit spool: the bytes on disk could not be counted anew; the count so far stays');
      }
      const now = linkState();
      told = { segment: now.durableEnd.segment, offset: now.durableEnd.offset, retain: now.retainFrom, needsRoom: now.needsRoom };
      return { t: 'init', settings, publicKeyPem: key.publicKeyPem, ...now };
    },
    onMessage,
    onUp(up) {
      metrics.auditStoreUp.set(up ? 1 : 0);
      if (!up) {
        setServing(false);
        clickhouseUp = false;
        // oldestUnshippedAt stays: the backlog is still there, ageing, while no store ships it.
        rpc.failAll();
      }
    },
    onRestart: () => metrics.auditStoreRestarts.inc(),
  });
  // Started now (not at listen): the engine warms up while the ports open.
  supervisor.start();
  const linkTimer = setInterval(pushLink, LINK_EVERY_MS);
  linkTimer.unref();
  const store = inlineAuditStore === null ? null : await (inlineAuditStore as Promise<AuditStore>);
  const states = supervisor;

  const stats: AuditStats = {
    written: () => spool.writer.recordsWritten,
    dropped: () => spool.dropped,
    timedOut: () => spool.timedOut,
    shipped: () => shipped,
    deadLettered: () => deadLettered,
    // Records shipped again after a store restart (from its last checkpoint) are counted again: never below 0.
    pending: () => Math.max(0, backlog + spool.writer.recordsWritten - shipped - deadLettered),
    held: () => spool.writer.heldRecords,
    spoolBytes: () => spool.writer.bytesOnDisk,
    spoolMaxBytes: () => settings.AUDIT_SPOOL_MAX_BYTES,
    fsyncs: () => spool.writer.fsyncs,
    oldestUnshippedAgeSeconds: () => (oldestUnshippedAt === 0 ? 0 : (Date.now() - oldestUnshippedAt) / 1000),
    clickhouseUp: () => clickhouseUp,
    writable: () => spool.writable,
  };
  metrics.watchAudit(stats);

  return {
    sink: spool,
    store,
    storeSocket: join(settings.DATA_DIR, STORE_SOCKET),
    storeState() {
      const state = states.state;
      return {
        state,
        pid: states.pid,
        restarts: states.restarts,
        restartInMs: state === 'down' ? Math.max(0, states.nextStartAt - Date.now()) : undefined,
      };
    },
    whenServing(ms) {
      if (serving) return Promise.resolve(true);
      if (states.state !== 'up') return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const done = (ok: boolean) => {
          clearTimeout(timer);
          servingWaiters.delete(done);
          resolve(ok);
        };
        const timer = setTimeout(() => done(false), ms);
        servingWaiters.add(done);
      });
    },
    stats,
    signing: { publicKey: key.publicKey, publicKeyPem: key.publicKeyPem, keyId: key.keyId },
    sealer,
    readiness() {
      const health = spool.writer.health;
      if (health.state === 'healthy') return { ok: true };
      return { ok: !closed, detail: `audit spool not writable: ${health.code}` };
    },
    start() {
      sealer.start();
    },
    async stop() {
      const droppedBefore = spool.dropped;
      const held = spool.writer.heldRecords;
      await spool.close();
      const lost = spool.dropped - droppedBefore;
      if (lost > 0) {
        log.error(
          { held, lost },
          `audit spool: ${lost} held records could not be written before the stop (the disk is still failing); their transactions will show as interrupted`,
        );
      }
      try {
        // Every record is settled now: the open period is sealed (cut short), filed, and stored once if it can be.
        await sealer.stop();
      } catch (err) {
        log.error({ code: (err as NodeJS.ErrnoException).code ?? 'EIO' }, `audit seals: sealing at stop failed: ${(err as Error).message}`);
      }
      try {
        // The last records' durable end first, then the store finishes its batch and closes.
        clearInterval(linkTimer);
        pushLink();
        await states.stop();
      } finally {
        lock?.release();
      }
    },
  };
}

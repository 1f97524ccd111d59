import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AuditSink } from './audit';
import { AuditStore } from './clickhouse';
import type { Settings } from './config';
import { DataDirInUseError, DataDirLock, LOCK_FILE } from './data-dir';
import type { Logger } from './log';
import { loadSigningKey, Sealer, type SigningKey } from './seal';
import type { AuditStats, GatewayMetrics } from './metrics';
import { Shipper, type ShipperFileWork } from './shipper';
import { AuditSpool, type AuditSpoolRecovery } from './spool';

export interface AuditPipeline {
  readonly sink: AuditSink;
  readonly store: AuditStore;
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
  /** Stops the shipper after its current batch, then closes the spool and the store. */
  stop(): Promise<void>;
}

/**
 * Composes the audit flow: transaction → record → spool (durable) → shipper → ClickHouse.
 * Start-up recovers the spool and closes interrupted transactions before any traffic;
 * it never waits on ClickHouse (the shipper prepares the schema when it can).
 */
export async function buildAuditPipeline(settings: Settings, log: Logger, metrics: GatewayMetrics): Promise<AuditPipeline> {
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
    return await openAuditPipeline(settings, log, metrics, lock);
  } catch (err) {
    lock?.release();
    throw err;
  }
}

async function openAuditPipeline(settings: Settings, log: Logger, metrics: GatewayMetrics, lock: DataDirLock | null): Promise<AuditPipeline> {
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

  const store = AuditStore.fromSettings(settings);
  let clickhouseUp = false;
  const shipper = new Shipper(
    {
      deadLetterDir: join(settings.DATA_DIR, 'dead-letter'),
      batchMaxRecords: settings.AUDIT_BATCH_MAX_RECORDS,
      batchMaxAgeMs: settings.AUDIT_BATCH_MAX_AGE_MS,
      minBackoffMs: 100,
      maxBackoffMs: 30_000,
    },
    spool.queue,
    store,
    {
      ready(applied) {
        clickhouseUp = true;
        sealer.storeReady(store);
        log.info({ store: store.kind, database: store.database, migrations_applied: applied }, 'audit store ready');
      },
      shipped(records, seconds) {
        clickhouseUp = true;
        metrics.auditInserted(records, seconds);
      },
      failed(error, retryInMs) {
        clickhouseUp = false;
        metrics.auditInsertFailed('transient');
        log.warn({ code: error.code, retry_in_ms: Math.round(retryInMs) }, `audit store unavailable, backlog kept on disk: ${error.message}`);
      },
      deadLettered(records, file, error) {
        metrics.auditInsertFailed('permanent');
        log.error({ code: error.code, records, file }, `audit batch dead-lettered (README: Dead letters): ${error.message}`);
      },
      skippedBadBytes(bytes) {
        metrics.spoolCorruptBytes.inc(bytes);
        log.warn({ bad_bytes: bytes }, 'audit spool: corrupt tail of an older segment skipped');
      },
      fileFault(kind, error) {
        log.error(
          { code: error.code ?? 'EIO', work: kind },
          `audit shipper: ${SHIPPER_WORK[kind]} failed (${error.code ?? 'EIO'}), retrying; nothing is skipped: ${error.message}`,
        );
        log.flush();
      },
      fileRecovered(kind) {
        log.warn({ work: kind }, `audit shipper: ${SHIPPER_WORK[kind]} works again`);
      },
      unmatchedFinals(records) {
        metrics.auditUnmatchedFinals.inc(records);
        log.error(
          { records, total: spool.queue.unmatchedFinals },
          'audit shipper: final records whose begin record is not in the spool (a damaged or edited spool) stored with the fields they carry',
        );
      },
    },
  );

  const stats: AuditStats = {
    written: () => spool.writer.recordsWritten,
    dropped: () => spool.dropped,
    timedOut: () => spool.timedOut,
    shipped: () => shipper.shippedRecords,
    deadLettered: () => shipper.deadLetteredRecords,
    pending: () => backlog + spool.writer.recordsWritten - shipper.shippedRecords - shipper.deadLetteredRecords,
    held: () => spool.writer.heldRecords,
    spoolBytes: () => spool.writer.bytesOnDisk,
    spoolMaxBytes: () => settings.AUDIT_SPOOL_MAX_BYTES,
    fsyncs: () => spool.writer.fsyncs,
    oldestUnshippedAgeSeconds: () => (shipper.oldestUnshippedAt === 0 ? 0 : (Date.now() - shipper.oldestUnshippedAt) / 1000),
    clickhouseUp: () => clickhouseUp,
    writable: () => spool.writable,
  };
  metrics.watchAudit(stats);

  return {
    sink: spool,
    store,
    stats,
    signing: { publicKey: key.publicKey, publicKeyPem: key.publicKeyPem, keyId: key.keyId },
    sealer,
    readiness() {
      const health = spool.writer.health;
      if (health.state === 'healthy') return { ok: true };
      return { ok: !closed, detail: `audit spool not writable: ${health.code}` };
    },
    start() {
      shipper.start();
      sealer.start();
    },
    async stop() {
      await shipper.stop();
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
        await store.close();
      } finally {
        lock?.release();
      }
    },
  };
}

const SHIPPER_WORK: Record<ShipperFileWork, string> = {
  read: 'reading the spool',
  checkpoint: 'saving the checkpoint',
  delete: 'deleting a shipped segment',
  dead_letter: 'writing a dead-letter file',
  loop: 'the shipping loop (restarted)',
};

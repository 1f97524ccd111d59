import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AuditSink } from './audit';
import { AuditStore } from './clickhouse';
import type { Settings } from './config';
import type { Logger } from './log';
import type { AuditStats, GatewayMetrics } from './metrics';
import { Shipper } from './shipper';
import { AuditSpool } from './spool';

export interface AuditPipeline {
  readonly sink: AuditSink;
  readonly store: AuditStore;
  readonly stats: AuditStats;
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
  const spoolDir = join(settings.DATA_DIR, 'spool');
  const { spool, recovery } = await AuditSpool.open({
    dir: spoolDir,
    segmentBytes: settings.AUDIT_SEGMENT_BYTES,
    maxBytes: settings.AUDIT_SPOOL_MAX_BYTES,
    deadlineMs: settings.AUDIT_WRITE_TIMEOUT_MS,
    commitDelayMs: settings.AUDIT_GROUP_COMMIT_MS,
    context: { instance: hostname(), environment: settings.ENVIRONMENT },
  });
  for (const bad of recovery.badTails) {
    log.warn({ segment: bad.segment, bad_bytes: bad.badBytes }, 'audit spool: torn or corrupt tail skipped (records before it are kept)');
    metrics.spoolCorruptBytes.inc(bad.badBytes);
  }
  if (recovery.interrupted > 0) log.warn({ interrupted: recovery.interrupted }, 'audit spool: transactions in flight at the last stop recorded as interrupted');
  const backlog = recovery.backlog;
  const writtenAtStart = spool.writer.recordsWritten;

  const store = AuditStore.fromSettings(settings);
  let clickhouseUp = false;
  const shipper = new Shipper(
    {
      spoolDir,
      deadLetterDir: join(settings.DATA_DIR, 'dead-letter'),
      batchMaxRecords: settings.AUDIT_BATCH_MAX_RECORDS,
      batchMaxAgeMs: settings.AUDIT_BATCH_MAX_AGE_MS,
      minBackoffMs: 100,
      maxBackoffMs: 30_000,
    },
    spool.writer,
    store,
    {
      ready(applied) {
        clickhouseUp = true;
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
    },
  );

  const stats: AuditStats = {
    written: () => spool.writer.recordsWritten,
    dropped: () => spool.dropped,
    timedOut: () => spool.timedOut,
    shipped: () => shipper.shippedRecords,
    deadLettered: () => shipper.deadLetteredRecords,
    pending: () => backlog + (spool.writer.recordsWritten - writtenAtStart) - shipper.shippedRecords - shipper.deadLetteredRecords,
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
    start: () => shipper.start(),
    async stop() {
      await shipper.stop();
      await spool.close();
      await store.close();
    },
  };
}

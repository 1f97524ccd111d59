export {
  SpoolWriter,
  SpoolClosedError,
  SpoolFullError,
  SpoolTimeoutError,
  SpoolUnavailableError,
  HELD_MAX_BYTES,
  HELD_LOW_PRIORITY_BYTES,
  type SpoolWriterOptions,
  type SpoolHealth,
  type DurableEnd,
} from './spool-writer';
export { recoverSpool, scanSegment, type RecoveryReport } from './recovery';
export { readBatch, type SpoolBatch } from './spool-reader';
export { readCheckpoint, writeCheckpoint, loadCheckpoint, saveCheckpoint, type SpoolPosition } from './checkpoint';
export { SpoolQueue, type AcknowledgeResult, type QueueBatch, type SpoolLink } from './spool-queue';
export { listSegments, listSegmentsAsync, segmentPath } from './segments';
export { AuditSpool, type AuditSpoolOptions, type AuditSpoolRecovery } from './audit-spool';
export { encodeRecord, decodeRecord } from './framing';

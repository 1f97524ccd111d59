export { encodeAuditRecord, interruptedRecord, recordIdentity, isoMillis, type RecordContext, type RecordVersion } from './audit-record';
export { decodeJwtClaims } from './jwt-claims';
export type { AuditSink } from './audit-sink';

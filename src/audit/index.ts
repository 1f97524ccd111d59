export {
  encodeAuditRecord,
  endFactsAlone,
  endFactsOf,
  END_FACTS,
  mergeEndFacts,
  interruptedFields,
  interruptedRecord,
  recordIdentity,
  recordSealOf,
  isoMillis,
  wellFormed,
  type RecordContext,
  type RecordFields,
  type RecordSeal,
  type RecordVersion,
} from './audit-record';
export { decodeJwtClaims } from './jwt-claims';
export type { AuditSink } from './audit-sink';

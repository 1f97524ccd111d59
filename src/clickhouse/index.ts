export { AuditStore, type AuditStoreOptions, type AuditRow, type SummaryRow } from './audit-store';
export { AuditStoreError, StoreConfigError, classifyStoreError } from './store-error';
export { migrations } from './migrations';
export {
  type SearchFilters,
  type KeysetPosition,
  type ExportWindow,
  type SummaryDimension,
  SUMMARY_DIMENSIONS,
  REFUSAL_OUTCOMES,
  ERROR_OUTCOMES,
  EXPORT_COLUMNS,
  EXPORT_KINDS,
  CSV_LIST_SEPARATOR,
  type ExportKind,
} from './audit-search';
export { AUDIT_COLUMNS, SEARCH_COLUMNS, type AuditColumn } from './audit-columns';
export { type AccessLogRow, type AccessLogFilters } from './access-log';
export { verifyTrail, millisExpr, numberExpr, verifyQueries, type VerifyRange, type VerifyResult, type ChainVerdict } from './audit-verify';

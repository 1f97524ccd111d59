export { AuditStore, type AuditStoreOptions, type AuditRow } from './audit-store';
export { AuditStoreError, StoreConfigError, classifyStoreError } from './store-error';
export { migrations } from './migrations';
export { type SearchFilters } from './audit-search';
export { AUDIT_COLUMNS, SEARCH_COLUMNS, type AuditColumn } from './audit-columns';
export { verifyTrail, millisExpr, numberExpr, verifyQueries, type VerifyRange, type VerifyResult } from './audit-verify';

export { createAdminApp, type ReadinessCheck, type AdminAccess } from './admin-app';
export { AdminTokens, requireRole, type AdminCaller, type AdminRole } from './admin-tokens';
export { adminBindAddress, isLoopback, loopbackHostOnly, type AdminBind } from './admin-bind';
export { auditStoreProxy, PEER_HEADER, type StoreState, type AuditStoreProxyOptions } from './audit-store-proxy';

export { createAdminApp, type ReadinessCheck, type InvestigationOptions } from './admin-app';
export { AccessLog } from './access-log';
export { AdminTokens, type AdminCaller, type AdminRole } from './admin-tokens';
export { adminBindAddress, isLoopback, type AdminBind } from './admin-bind';

export { createAdminApp, type ReadinessCheck } from './admin-app';
export { AdminTokens, type AdminCaller, type AdminRole } from './admin-tokens';
export { adminBindAddress, isLoopback, type AdminBind } from './admin-bind';

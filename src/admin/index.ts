export { createAdminApp, type ReadinessCheck } from './admin-app';
export { AdminTokens, type AdminCaller, type AdminRole } from './admin-tokens';

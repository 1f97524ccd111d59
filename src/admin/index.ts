export { createAdminApp, type ReadinessCheck } from './admin-app';

export { createInvestigationsApp, drainAccessLog, DEFAULT_INVESTIGATIONS, type InvestigationAccess, type InvestigationOptions } from './investigations-app';
export { AccessLog } from './access-log';
export { serveOnSocket, StoreSocketError } from './serve-on-socket';

import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { KeyObject } from 'node:crypto';
import type { AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { loopbackHostOnly, requireRole, type AdminTokens } from '../admin';
import { auditSearchRoute } from './audit-search-route';
import { auditSummaryRoute } from './audit-summary-route';
import { auditSqlRoute } from './audit-sql-route';
import { AccessLog, accessLogMiddleware, accessLogRoute } from './access-log';
import { mountVerifyRoutes } from './verify-route';

/** Who may ask, and with which keys verify checks the seals. */
export interface InvestigationAccess {
  /** ADMIN_TOKENS_FILE, loaded; null: every route is open (loopback Host only). */
  tokens: AdminTokens | null;
  /** The key that verifies the audit seals: GET /audit/verify and /audit/public-key (verify-route.ts). */
  auditPublicKey?: KeyObject | null;
  /** Other gateways' public keys verify trusts too (AUDIT_VERIFY_KEYS_FILE). */
  auditVerifyKeys?: readonly KeyObject[];
}

/** Limits of the investigations API (settings), and where its access log goes. */
export interface InvestigationOptions {
  /** AUDIT_EXPORT_MAX_ROWS */
  exportMaxRows: number;
  /** AUDIT_SQL_MAX_ROWS */
  sqlMaxRows: number;
  /** AUDIT_SQL_TIMEOUT_MS */
  sqlTimeoutMs: number;
  /** This gateway's name in the access log (gateway_instance). */
  instance: string;
}

export const DEFAULT_INVESTIGATIONS: InvestigationOptions = { exportMaxRows: 1_000_000, sqlMaxRows: 10_000, sqlTimeoutMs: 10_000, instance: 'gateway' };

/**
 * The investigations API, /audit/* (an `auditor` token): search and export, summary,
 * access log, auditor SQL, verify. It is the audit store's: it answers wherever the
 * store lives, and the admin port hands /audit/* to it.
 *
 * A new /audit route: register it below with `...auditor` (after the access-log
 * middleware, so its uses and refusals are recorded); say what was asked in
 * res.locals.accessQuery (validated values only) and how many rows came back in
 * res.locals.accessRows; add its path to ACTIONS in access-log.ts.
 */
export function createInvestigationsApp(
  store: AuditStore,
  log: Logger,
  access: InvestigationAccess,
  investigations: InvestigationOptions = DEFAULT_INVESTIGATIONS,
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(helmet());
  // Audit rows name patients' practitioners and organisations: no cache may keep any /audit answer, errors included.
  app.use('/audit', (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // Auditing the auditors: every /audit request, refused ones included, once it has ended (access-log.ts).
  const accessLog = new AccessLog(store, log, investigations.instance);
  app.locals.accessLog = accessLog;
  app.use('/audit', accessLogMiddleware(accessLog));
  const tokenless = access.tokens === null ? [loopbackHostOnly] : [];
  const auditor = [...tokenless, requireRole(access.tokens, ['auditor'])];
  app.get('/audit/transactions', ...auditor, auditSearchRoute(store, log, { maxRows: investigations.exportMaxRows }));
  app.get('/audit/summary', ...auditor, auditSummaryRoute(store, log));
  app.get('/audit/access-log', ...auditor, accessLogRoute(store, log));
  app.post('/audit/sql', ...auditor, ...auditSqlRoute(store, log, { maxRows: investigations.sqlMaxRows, timeoutMs: investigations.sqlTimeoutMs }));
  if (access.auditPublicKey) mountVerifyRoutes(app, auditor, store, access.auditPublicKey, log, access.auditVerifyKeys);
  app.use('/audit', (_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}

/** Waits up to `ms` for access-log entries still on their way to the store. */
export function drainAccessLog(app: Express, ms: number): Promise<void> {
  return (app.locals.accessLog as AccessLog).drain(ms);
}

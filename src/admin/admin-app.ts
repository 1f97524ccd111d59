import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Registry } from 'prom-client';
import type { AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { requireRole, type AdminTokens } from './admin-tokens';
import { loopbackHostOnly } from './admin-bind';
import { auditSearchRoute } from './audit-search-route';
import { auditSummaryRoute } from './audit-summary-route';
import { auditSqlRoute } from './audit-sql-route';
import { AccessLog, accessLogMiddleware, accessLogRoute } from './access-log';
import { explorerRouter } from './explorer-route';
import { mountVerifyRoutes } from './verify-route';
import type { KeyObject } from 'node:crypto';

/** A readiness check returns a result instead of throwing (clickhouse-js ping's habit). */
export interface ReadinessCheck {
  readonly name: string;
  check(): { ok: boolean };
}

export interface AdminAccess {
  /** ADMIN_TOKENS_FILE, loaded; null: every route is open. */
  tokens: AdminTokens | null;
  /** ADMIN_METRICS_OPEN: /metrics needs no token. */
  metricsOpen: boolean;
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

const DEFAULT_INVESTIGATIONS: InvestigationOptions = { exportMaxRows: 1_000_000, sqlMaxRows: 10_000, sqlTimeoutMs: 10_000, instance: 'gateway' };

/**
 * The operations port: health and readiness (always open), metrics (a `metrics` or
 * `auditor` token) and, when audit is on, the investigations API (an `auditor` token):
 * search and export, summary, access log, auditor SQL.
 *
 * A new /audit route: register it below with `...auditor` (after the access-log
 * middleware, so its uses and refusals are recorded); say what was asked in
 * res.locals.accessQuery (validated values only) and how many rows came back in
 * res.locals.accessRows; add its path to ACTIONS in access-log.ts.
 */
export function createAdminApp(
  registry: Registry,
  readiness: readonly ReadinessCheck[],
  store: AuditStore | null,
  log: Logger,
  access: AdminAccess,
  investigations: InvestigationOptions = DEFAULT_INVESTIGATIONS,
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(helmet());

  app.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req: Request, res: Response) => {
    const checks = readiness.map((r) => ({ name: r.name, ...r.check() }));
    const ready = checks.every((c) => c.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });

  // No tokens: only a loopback Host, against DNS rebinding (admin-bind.ts). ADMIN_METRICS_OPEN with tokens is a trusted network's choice.
  const tokenless = access.tokens === null ? [loopbackHostOnly] : [];
  app.get('/metrics', ...tokenless, requireRole(access.metricsOpen ? null : access.tokens, ['metrics', 'auditor']), async (_req: Request, res: Response) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  // Audit rows name patients' practitioners and organisations: no cache may keep any /audit answer, errors included.
  app.use('/audit', (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // Auditing the auditors: every /audit request, refused ones included, once it has ended (access-log.ts).
  const accessLog = new AccessLog(store, log, investigations.instance);
  app.locals.accessLog = accessLog;
  app.use('/audit', accessLogMiddleware(accessLog));
  const auditor = [...tokenless, requireRole(access.tokens, ['auditor'])];
  if (store !== null) {
    app.get('/audit/transactions', ...auditor, auditSearchRoute(store, log, { maxRows: investigations.exportMaxRows }));
    app.get('/audit/summary', ...auditor, auditSummaryRoute(store, log));
    app.get('/audit/access-log', ...auditor, accessLogRoute(store, log));
    app.post('/audit/sql', ...auditor, ...auditSqlRoute(store, log, { maxRows: investigations.sqlMaxRows, timeoutMs: investigations.sqlTimeoutMs }));
    if (access.auditPublicKey) mountVerifyRoutes(app, auditor, store, access.auditPublicKey, log, access.auditVerifyKeys);
    // The audit explorer page (its own strict CSP): no data in it, so no token; it asks for one when /audit/* answers 401.
    app.use(explorerRouter(tokenless));
  }

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}

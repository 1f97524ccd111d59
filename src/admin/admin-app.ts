import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Registry } from 'prom-client';
import type { AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { requireRole, type AdminTokens } from './admin-tokens';
import { loopbackHostOnly } from './admin-bind';
import { auditSearchRoute } from './audit-search-route';
import { explorerRouter } from './explorer-route';

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
}

/**
 * The operations port: health and readiness (always open), metrics (a `metrics` or
 * `auditor` token) and, when audit is on, audit search (an `auditor` token).
 */
export function createAdminApp(registry: Registry, readiness: readonly ReadinessCheck[], store: AuditStore | null, log: Logger, access: AdminAccess): Express {
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
  if (store !== null) app.get('/audit/transactions', ...tokenless, requireRole(access.tokens, ['auditor']), auditSearchRoute(store, log));
  // The audit explorer page (its own strict CSP): no data in it, so no token; it asks for one when /audit/* answers 401.
  if (store !== null) app.use(explorerRouter(tokenless));

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}

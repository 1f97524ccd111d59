import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import type { Registry } from 'prom-client';
import { requireRole, type AdminTokens } from './admin-tokens';
import { loopbackHostOnly } from './admin-bind';
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
 * `auditor` token) and, when audit is on, the investigations API: every /audit request
 * goes to `auditApi` (auditStoreProxy: on to src/investigate, served by the audit store
 * process on its socket), which checks the auditor's token itself, and the explorer page
 * (static: no data in it, so no token). None of them waits on the store but /audit/*.
 */
export function createAdminApp(registry: Registry, readiness: readonly ReadinessCheck[], auditApi: RequestHandler | null, access: AdminAccess): Express {
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

  if (auditApi !== null) {
    // Not app.use('/audit', ...): the API sees its whole path, as it does when served on its own.
    // Case-insensitive, as Express routes match: /AUDIT/TRANSACTIONS is the API's (its no-store and access log), never the 404 below.
    app.use((req: Request, res: Response, next) => {
      const path = req.path.toLowerCase();
      return path === '/audit' || path.startsWith('/audit/') ? auditApi(req, res, next) : next();
    });
    // The audit explorer page (its own strict CSP): no data in it, so no token; it asks for one when /audit/* answers 401.
    app.use(explorerRouter(tokenless));
  }

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}

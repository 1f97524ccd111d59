import express, { type Express, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Registry } from 'prom-client';
import type { AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { auditSearchRoute } from './audit-search-route';

/** A readiness check returns a result instead of throwing (clickhouse-js ping's habit). */
export interface ReadinessCheck {
  readonly name: string;
  check(): { ok: boolean; detail?: string };
}

/** The operations port: health, readiness, metrics and (when audit is on) audit search. */
export function createAdminApp(registry: Registry, readiness: readonly ReadinessCheck[], store: AuditStore | null, log: Logger): Express {
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

  app.get('/metrics', async (_req: Request, res: Response) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  if (store !== null) app.get('/audit/transactions', auditSearchRoute(store, log));

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { Router, type RequestHandler, type Request, type Response } from 'express';
import helmet from 'helmet';

/**
 * The explorer page's policy: its own script and style only (no inline script or style,
 * no eval), API calls to this origin only, no frames (clickjacking), no plugins, no
 * <base>, and no form submission: the forms are handled by script, and a form that
 * submitted by itself would put the filters (a trace ID, say) into a URL.
 */
export const EXPLORER_CSP_DIRECTIVES = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'"],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
};

/** Where `npm run build` put the page (dist/explorer): seen from dist/src/admin when built, from src/admin under ts-jest. */
export function explorerDir(): string | null {
  for (const dir of [join(__dirname, '..', '..', 'explorer'), join(__dirname, '..', '..', 'dist', 'explorer')]) {
    if (existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'explorer.js'))) return dir;
  }
  return null;
}

/**
 * GET / (the page) and /explorer/* (its script, style sheet and icon), built from
 * web/explorer by `npm run build`. Nothing here holds audit data: the page fetches it
 * from /audit/* with the auditor's token, so `guards` is only what every admin route
 * without tokens has (a loopback Host). Revalidated on every load (no-cache, with an
 * ETag), so an upgraded gateway never runs an old script against a new API.
 */
export function explorerRouter(guards: RequestHandler[], dir: string | null = explorerDir()): Router {
  const router = Router();
  const csp = helmet.contentSecurityPolicy({ useDefaults: false, directives: EXPLORER_CSP_DIRECTIVES });
  if (dir === null) {
    router.get('/', ...guards, (_req: Request, res: Response) => {
      res.status(503).json({
        error: 'explorer page not built',
        message: 'this gateway was started without the built page: run `npm run build` (it bundles web/explorer into dist/explorer)',
      });
    });
    return router;
  }
  const noCache = (res: Response) => res.setHeader('Cache-Control', 'no-cache');
  router.get('/', ...guards, csp, (_req: Request, res: Response) => {
    noCache(res);
    res.sendFile(join(dir, 'index.html'));
  });
  router.use('/explorer', ...guards, csp, express.static(dir, { index: false, redirect: false, dotfiles: 'ignore', setHeaders: noCache }));
  return router;
}

import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { ConfigError, type Settings } from '../config';

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and "localhost": addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (h.startsWith('::ffff:')) return isLoopback(h.slice(7));
  return isIP(h) === 4 && h.startsWith('127.');
}

export interface AdminBind {
  /** Where the admin port listens. */
  host: string;
  /** The one start-up warning to log when the admin port was kept on loopback, else null. */
  warning: string | null;
}

/**
 * Where the admin port (health, metrics, audit search) listens. Without ADMIN_TOKENS_FILE
 * every admin route is open, so it never follows a non-loopback HOST on its own (the
 * container image sets HOST=0.0.0.0): it stays on 127.0.0.1, where the image's
 * HEALTHCHECK probes it, and says so once. An ADMIN_HOST set explicitly is honoured,
 * except a non-loopback one without tokens, which stops start-up (ConfigError): the
 * operator asked for something unsafe, and a silent fallback would hide that.
 */
export function adminBindAddress(settings: Pick<Settings, 'HOST' | 'ADMIN_HOST' | 'ADMIN_TOKENS_FILE'>): AdminBind {
  const tokens = settings.ADMIN_TOKENS_FILE !== undefined;
  if (settings.ADMIN_HOST !== undefined) {
    if (!tokens && !isLoopback(settings.ADMIN_HOST)) {
      throw new ConfigError(
        `config: ADMIN_HOST=${settings.ADMIN_HOST} is not a loopback address and ADMIN_TOKENS_FILE is not set: the audit API would be open to anyone who can reach it; set ADMIN_TOKENS_FILE, or ADMIN_HOST=127.0.0.1`,
      );
    }
    return { host: settings.ADMIN_HOST, warning: null };
  }
  if (tokens || isLoopback(settings.HOST)) return { host: settings.HOST, warning: null };
  return {
    host: '127.0.0.1',
    warning:
      `ADMIN_TOKENS_FILE is not set: the admin port (audit search, metrics) listens on 127.0.0.1 only, not on HOST=${settings.HOST}, ` +
      'because without tokens anyone who reached it could read the audit trail; set ADMIN_TOKENS_FILE to serve it on HOST (or ADMIN_HOST to choose its address)',
  };
}

/**
 * Express guard for the routes an open admin port (no ADMIN_TOKENS_FILE) serves without a
 * token: only a loopback Host is answered. Binding to loopback keeps other machines out,
 * but not a browser on this one: a web page whose name the attacker re-points at
 * 127.0.0.1 (DNS rebinding) is same-origin with the port as far as the browser knows,
 * and could read /metrics and the audit trail. A browser always sends the page's own name
 * in Host; curl, the image's health check and a local scraper send 127.0.0.1 or localhost.
 * A request without Host (HTTP/1.0) is not a browser's and passes.
 */
export function loopbackHostOnly(req: Request, res: Response, next: NextFunction): void {
  const host = req.headers.host;
  if (host === undefined || isLoopback(hostOfHeader(host))) return next();
  res.status(403).json({
    error: 'forbidden',
    message:
      'without ADMIN_TOKENS_FILE this route answers only requests addressed to 127.0.0.1, [::1] or localhost (a Host naming anything else may be a DNS-rebinding web page)',
  });
}

/** The host part of a Host header value: "[::1]:9090" → "[::1]", "localhost:9090" → "localhost". */
function hostOfHeader(value: string): string {
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return end === -1 ? value : value.slice(0, end + 1);
  }
  const colon = value.indexOf(':');
  return colon === -1 ? value : value.slice(0, colon);
}

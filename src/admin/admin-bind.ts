import { isIP } from 'node:net';
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

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../config';

export type AdminRole = 'metrics' | 'auditor';

/** Who an admin request was made by: a token's name and role. */
export interface AdminCaller {
  name: string;
  role: AdminRole;
}

const tokensSchema = z
  .array(
    z
      .object({
        name: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'letters, digits and . _ @ - (up to 64)'),
        role: z.enum(['metrics', 'auditor']),
        sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the SHA-256 of the token, 64 lower-case hex digits (never the token itself)'),
      })
      .strict(),
  )
  .min(1, 'lists no tokens');

/**
 * The admin tokens (ADMIN_TOKENS_FILE): only their SHA-256 digests are kept, in the file
 * and in memory. A presented token is hashed and looked up by digest.
 */
export class AdminTokens {
  private constructor(private readonly byDigest: ReadonlyMap<string, AdminCaller>) {}

  static load(file: string): AdminTokens {
    let entries: z.output<typeof tokensSchema>;
    try {
      const parsed = tokensSchema.safeParse(parseYaml(readFileSync(file, 'utf8')));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new ConfigError(`ADMIN_TOKENS_FILE ${file}: ${issue.path.length ? `entry ${issue.path.join('.')}: ` : ''}${issue.message}`);
      }
      entries = parsed.data;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`ADMIN_TOKENS_FILE ${file}: ${(err as Error).message}`, { cause: err });
    }
    const byDigest = new Map<string, AdminCaller>();
    for (const e of entries) {
      if (byDigest.has(e.sha256)) throw new ConfigError(`ADMIN_TOKENS_FILE ${file}: two entries share one token (${e.name})`);
      byDigest.set(e.sha256, { name: e.name, role: e.role });
    }
    return new AdminTokens(byDigest);
  }

  /** The caller a bearer token belongs to, or null. */
  identify(token: string): AdminCaller | null {
    return this.byDigest.get(createHash('sha256').update(token, 'utf8').digest('hex')) ?? null;
  }
}

/**
 * Express guard for an admin route. With no tokens configured every caller passes (local
 * trials; start-up warns). Otherwise: no or unknown token → 401, a token without one of
 * `roles` → 403. The caller is left in res.locals.caller (on a 403 too) for the access log.
 */
export function requireRole(tokens: AdminTokens | null, roles: readonly AdminRole[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (tokens === null) {
      res.locals.caller = { name: 'anonymous', role: null };
      return next();
    }
    // Authorization is a singleton field, and Node keeps only the first of several: a
    // proxy in front that reads the last would name another caller than the one this
    // request runs as (and logs). Two of them are refused, whatever they hold.
    if (authorizationLines(req.rawHeaders) > 1) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="spine-gateway-admin"');
      res.status(401).json({ error: 'unauthorized', message: 'send one Authorization header: Bearer <admin token> (ADMIN_TOKENS_FILE)' });
      return;
    }
    const header = req.headers.authorization ?? '';
    // The scheme is case-insensitive (RFC 9110 11.1) and followed by 1*SP; the token is not.
    const match = /^bearer +([\x21-\x7e]{1,512})$/i.exec(header);
    const caller = match ? tokens.identify(match[1]) : null;
    if (caller === null) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="spine-gateway-admin"');
      res.status(401).json({ error: 'unauthorized', message: 'send Authorization: Bearer <admin token> (ADMIN_TOKENS_FILE)' });
      return;
    }
    if (!roles.includes(caller.role)) {
      res.locals.caller = caller; // the access log names who was refused
      res.status(403).json({ error: 'forbidden', message: `this needs a token with the role ${roles.join(' or ')}; "${caller.name}" has ${caller.role}` });
      return;
    }
    res.locals.caller = caller;
    next();
  };
}

/** How many Authorization field lines a request carries (Node's rawHeaders: [name, value, ...]). */
function authorizationLines(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].length === 13 && rawHeaders[i].toLowerCase() === 'authorization') n++;
  return n;
}

import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import type { AccessLogRow, AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { PEER_HEADER } from '../admin';
import { CURSOR_RULE, MAX_LIMIT, decodeCursor, encodeCursor, parseQuery, storeUnavailable } from './audit-filters';

/** What each /audit route is, in the access log's `action`. */
const ACTIONS: Record<string, string> = {
  '/transactions': 'search',
  '/summary': 'summary',
  '/verify': 'verify',
  '/public-key': 'public_key',
  '/access-log': 'access_log',
  '/sql': 'sql',
};
export const ACCESS_ACTIONS = ['search', 'export', 'summary', 'verify', 'public_key', 'access_log', 'sql', 'unknown'] as const;

export interface AccessLogOptions {
  /** Entries kept for a store that does not take them, at most (then the oldest go, and an error line says so). */
  maxQueue?: number;
  /** First wait before a failed insert is retried (doubling up to 30 s). */
  retryMs?: number;
}

/**
 * The auditors' own trail: one entry per request to /audit/*, refused ones (401, 403,
 * 400) included, written to `{db}.access_log` after the request ends, and logged as one
 * line (`audit access`) at the same time, so a log pipeline holds a copy. An insert that
 * fails is kept in a bounded queue and retried with backoff; nothing is dropped without
 * an error line naming how many.
 */
export class AccessLog {
  private readonly queue: AccessLogRow[] = [];
  private inFlight = false;
  private timer: NodeJS.Timeout | null = null;
  private retryMs: number;
  private failing = false;
  dropped = 0;

  constructor(
    private readonly store: AuditStore | null,
    private readonly log: Logger,
    private readonly instance: string,
    private readonly options: AccessLogOptions = {},
  ) {
    this.retryMs = options.retryMs ?? 1000;
  }

  /** Entries waiting for the store. */
  get pending(): number {
    return this.queue.length;
  }

  record(entry: Omit<AccessLogRow, 'event_id' | 'at' | 'gateway_instance'>, query: unknown): void {
    const row: AccessLogRow = { event_id: randomUUID(), at: new Date().toISOString(), ...entry, gateway_instance: this.instance };
    const refused = entry.status === 401 || entry.status === 403;
    const { query: _json, ...fields } = row;
    (refused ? this.log.warn : this.log.info).call(this.log, { ...fields, filters: query }, 'audit access');
    if (this.store === null) return;
    this.queue.push(row);
    const max = this.options.maxQueue ?? 10_000;
    if (this.queue.length > max) {
      const lost = this.queue.splice(0, this.queue.length - max).length;
      this.dropped += lost;
      this.log.error(
        { dropped: lost, dropped_total: this.dropped },
        'access log: the audit store has not taken entries for a long time; the oldest were dropped (their "audit access" log lines remain)',
      );
    }
    if (!this.failing) this.flush();
  }

  /** Sends what is queued (one insert at a time); on failure keeps it and retries later. */
  flush(): void {
    if (this.inFlight || this.queue.length === 0 || this.store === null) return;
    const batch = this.queue.slice(0, 1000);
    this.inFlight = true;
    this.store.insertAccessLog(batch).then(
      () => {
        this.inFlight = false;
        this.queue.splice(0, batch.length);
        if (this.failing) this.log.info({ pending: this.queue.length }, 'access log: the audit store takes entries again');
        this.failing = false;
        this.retryMs = this.options.retryMs ?? 1000;
        this.flush();
      },
      (err: { code?: string; message?: string }) => {
        this.inFlight = false;
        if (!this.failing) this.log.warn({ code: err.code, pending: this.queue.length }, 'access log: insert failed, entries kept and retried');
        this.failing = true;
        this.schedule();
      },
    );
  }

  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.failing = false;
      this.flush();
      this.failing = this.inFlight || this.queue.length > 0;
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
  }

  /** At shutdown: gives what is queued up to `ms` to reach the store, then closes. */
  async drain(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    this.failing = false;
    while ((this.queue.length > 0 || this.inFlight) && Date.now() < deadline) {
      this.flush();
      await new Promise((r) => setTimeout(r, 20));
      if (this.failing) break; // the store does not take them: no point waiting
    }
    this.close();
  }

  /** Stops retrying; what is still queued is named in an error line (its log lines were written). */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.queue.length > 0)
      this.log.error({ pending: this.queue.length }, 'access log: entries not written to the audit store at shutdown (their "audit access" log lines remain)');
  }
}

/**
 * Express middleware for /audit: records every request once it ends (answered, or its
 * connection gone). Mounted before the token check, so 401s and 403s are recorded too.
 * Routes report through res.locals: accessQuery (what was asked, validated), accessRows,
 * accessBytes, accessSha256, accessStatus (when the status line does not tell: 499 for
 * an export the client left), accessAction (export), accessHold (set while a route works
 * on after its response may have closed; it calls res.locals.accessRelease() when done).
 */
export function accessLogMiddleware(accessLog: AccessLog) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    // Read now: once routed, req.path no longer says where under /audit the request went.
    const path = req.path;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const known = Object.prototype.hasOwnProperty.call(ACTIONS, path) ? path : null;
      const format = req.query.format;
      const action =
        (res.locals.accessAction as string | undefined) ??
        (known === '/transactions' && (format === 'csv' || format === 'ndjson') ? 'export' : known ? ACTIONS[known] : 'unknown');
      const caller = res.locals.caller as { name: string; role: string | null } | undefined;
      const query: unknown = res.locals.accessQuery ?? {};
      const status = (res.locals.accessStatus as number | undefined) ?? (res.writableFinished ? res.statusCode : 499);
      accessLog.record(
        {
          who: caller?.name ?? '',
          role: caller?.role ?? '',
          client_ip: peerAddress(req),
          action,
          method: req.method.length <= 10 ? req.method : 'OTHER',
          // The route's own path, never the request's (the caller's text).
          route: known ? `/audit${known}` : '/audit/*',
          query: JSON.stringify(query),
          status,
          rows: Number(res.locals.accessRows ?? 0),
          bytes: Number(res.locals.accessBytes ?? res.getHeader('content-length') ?? 0),
          duration_ms: Math.round(Number(process.hrtime.bigint() - started) / 1e3) / 1e3,
          sha256: (res.locals.accessSha256 as string | undefined) ?? '',
        },
        query,
      );
    };
    // A route still at work when the connection closes (an export the client left) holds
    // the entry until it has said how far it got (res.locals.accessRelease).
    let ended = false;
    const end = () => {
      ended = true;
      if (res.locals.accessHold !== true) finish();
    };
    res.locals.accessRelease = () => {
      res.locals.accessHold = false;
      if (ended) finish();
    };
    res.on('finish', end);
    res.on('close', end);
    next();
  };
}

/**
 * Who made the request, for the access log. On the store's Unix socket (mode 0600: only
 * the gateway's user connects) there is no peer address, so the admin port's proxy
 * (src/admin/audit-store-proxy.ts) says it in PEER_HEADER, after deleting any copy the caller sent;
 * it is believed only there. On TCP (the API served directly) the connection's own
 * address counts and the header is ignored: anyone can send one.
 */
function peerAddress(req: Request): string {
  const ip = req.socket.remoteAddress;
  if (ip !== undefined) return ip;
  const told = req.headers[PEER_HEADER];
  return typeof told === 'string' && isIP(told) !== 0 ? told : '';
}

const ISO = (example: string) => z.iso.datetime({ offset: true, message: `must be an ISO 8601 date-time, e.g. ${example}` });
const accessLogSchema = z
  .object({
    who: z
      .string()
      .regex(/^[A-Za-z0-9._@-]{0,64}$/, 'must be an admin token name, or empty for the refused requests that named nobody')
      .optional(),
    action: z.enum(ACCESS_ACTIONS, { message: `must be one of ${ACCESS_ACTIONS.join(', ')}` }).optional(),
    from: ISO('2026-11-21T09:00:00Z').optional(),
    to: ISO('2026-11-21T10:00:00Z').optional(),
    limit: z.coerce
      .number({ message: `must be a whole number from 1 to ${MAX_LIMIT}` })
      .int()
      .min(1)
      .max(MAX_LIMIT)
      .default(100),
    cursor: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,200}$/, CURSOR_RULE)
      .optional(),
  })
  .strict();
const ACCESS_LOG_HELP = {
  who: 'an admin token name (anonymous without ADMIN_TOKENS_FILE; empty: requests refused 401)',
  action: ACCESS_ACTIONS.join(', '),
  from: 'an ISO 8601 date-time, inclusive',
  to: 'an ISO 8601 date-time, exclusive',
  limit: `entries per page, 1 to ${MAX_LIMIT} (default 100)`,
  cursor: 'the next_cursor of the previous page',
};

/** GET /audit/access-log?who&action&from&to&limit&cursor: newest first, paged like the search. */
export function accessLogRoute(store: AuditStore, log: Logger) {
  return async (req: Request, res: Response): Promise<void> => {
    const q = parseQuery(accessLogSchema, req.query, ACCESS_LOG_HELP, res);
    if (q === null) return;
    const { cursor, ...filters } = q;
    res.locals.accessQuery = { ...filters, ...(cursor !== undefined ? { cursor: true } : {}) };
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (after === null) {
      res.status(400).json({ error: 'invalid filter', filter: 'cursor', message: CURSOR_RULE, valid: ACCESS_LOG_HELP });
      res.locals.accessQuery = { invalid: 'cursor' };
      return;
    }
    try {
      const rows = await store.accessLog({ ...filters, after });
      res.locals.accessRows = rows.length;
      const entries = rows.map(({ event_id: _id, ...e }) => ({ ...e, query: safeJson(String(e.query)) }));
      const last = rows[rows.length - 1];
      res.json({ entries, next_cursor: rows.length === q.limit ? encodeCursor(last.at, last.event_id) : null });
    } catch (err) {
      storeUnavailable(res, err, log, 'access log read');
    }
  };
}

/** The stored `query` JSON as an object (text the gateway wrote; kept as text if it somehow does not parse). */
function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

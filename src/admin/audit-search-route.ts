import type { Request, Response } from 'express';
import { z } from 'zod';
import type { AuditStore, SearchFilters } from '../clickhouse';
import type { Logger } from '../log';
import { ASID_PATTERN, INTERACTION_PATTERN } from '../validate';
import { OUTCOMES } from '../transaction';

const MAX_LIMIT = 1000;
const CURSOR_RULE = 'must be the next_cursor of a previous page, unchanged (an opaque base64url string); leave it out for the first page';

const filtersSchema = z
  .object({
    // Compared in lower case: consumers send GUIDs in either case, and the record keeps what was sent.
    trace_id: z
      .string()
      .regex(/^[\x21-\x7e]{1,64}$/, 'must be the Ssp-TraceID (up to 64 printable characters; any case)')
      .transform((v) => v.toLowerCase())
      .optional(),
    consumer_asid: z.string().regex(ASID_PATTERN, 'must be an ASID (digits)').optional(),
    provider_asid: z.string().regex(ASID_PATTERN, 'must be an ASID (digits)').optional(),
    interaction_id: z.string().regex(INTERACTION_PATTERN, 'must be an interaction URN').optional(),
    outcome: z.enum(OUTCOMES).optional(),
    error_code: z
      .string()
      .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be a stable error code, e.g. MISSING_OR_INVALID_HEADER or AMBIGUOUS_PATH (README, Refusals)')
      .optional(),
    status: z.coerce.number().int().min(0).max(599).optional(),
    from: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-11-21T09:00:00Z' }).optional(),
    to: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-11-21T10:00:00Z' }).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(100),
    cursor: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,200}$/, CURSOR_RULE)
      .optional(),
  })
  .strict();

function encodeCursor(row: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify([row.received_at, row.event_id])).toString('base64url');
}

/** What encodeCursor writes: the row's received_at as ISO 8601 UTC with milliseconds, and its event id. */
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CURSOR_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A cursor is only ever one this API wrote: anything else is the caller's text and is
 * refused here, before it can reach ClickHouse (which would fail on it, and quote it).
 */
function decodeCursor(cursor: string): SearchFilters['after'] | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(value) || value.length !== 2) return null;
  const [receivedAt, eventId] = value as unknown[];
  if (typeof receivedAt !== 'string' || typeof eventId !== 'string' || !CURSOR_TIME.test(receivedAt) || !CURSOR_ID.test(eventId)) return null;
  const time = Date.parse(receivedAt);
  if (Number.isNaN(time) || new Date(time).toISOString() !== receivedAt) return null; // 2026-13-45 and the like
  return { receivedAt, eventId };
}

/**
 * GET /audit/transactions: validated filters (a clear 400 naming the first bad one),
 * a bounded limit, newest first, and an opaque cursor for the next page. Every search is
 * logged with who asked (the admin token's name) and its filters: investigators are audited too.
 */
export function auditSearchRoute(store: AuditStore, log: Logger) {
  return async (req: Request, res: Response): Promise<void> => {
    const parsed = filtersSchema.safeParse(req.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const name = issue.path.length ? String(issue.path[0]) : ((issue as { keys?: string[] }).keys?.join(', ') ?? 'query');
      res.status(400).json({ error: 'invalid filter', filter: name, message: issue.message });
      return;
    }
    const { cursor, ...rest } = parsed.data;
    const filters: SearchFilters = rest;
    if (cursor !== undefined) {
      const after = decodeCursor(cursor);
      if (after === null) {
        res.status(400).json({ error: 'invalid filter', filter: 'cursor', message: CURSOR_RULE });
        return;
      }
      filters.after = after;
    }
    const caller = res.locals.caller as { name: string; role: string | null };
    log.info({ who: caller.name, role: caller.role, filters: parsed.data, client_ip: req.socket.remoteAddress }, 'audit search');
    try {
      const rows = await store.search(filters);
      res.json({ transactions: rows, next_cursor: rows.length === filters.limit ? encodeCursor(rows[rows.length - 1]) : null });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      // ClickHouse's own errors (a numeric code) may quote a filter value, the caller's text:
      // only their code is logged. Connection failures (ECONNREFUSED, timeouts) say where.
      if (/^\d{1,5}$/.test(e.code ?? '')) log.error({ code: e.code }, 'audit search failed: the audit store refused the query');
      else log.error({ code: e.code }, `audit search failed, the store did not answer: ${e.message ?? String(err)}`);
      res.status(503).json({ error: 'audit store unavailable', message: 'the audit store did not answer; try again shortly' });
    }
  };
}

import type { Request, Response } from 'express';
import { z } from 'zod';
import type { AuditStore, SearchFilters } from '../clickhouse';
import type { Logger } from '../log';
import { ASID_PATTERN, INTERACTION_PATTERN } from '../validate';
import { OUTCOMES } from '../transaction';

const MAX_LIMIT = 1000;

const filtersSchema = z
  .object({
    trace_id: z.string().regex(/^[\x21-\x7e]{1,64}$/, 'must be the Ssp-TraceID (up to 64 printable characters)').optional(),
    consumer_asid: z.string().regex(ASID_PATTERN, 'must be an ASID (digits)').optional(),
    provider_asid: z.string().regex(ASID_PATTERN, 'must be an ASID (digits)').optional(),
    interaction_id: z.string().regex(INTERACTION_PATTERN, 'must be an interaction URN').optional(),
    outcome: z.enum(OUTCOMES).optional(),
    status: z.coerce.number().int().min(0).max(599).optional(),
    from: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-11-21T09:00:00Z' }).optional(),
    to: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-11-21T10:00:00Z' }).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(100),
    cursor: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, 'must be a next_cursor value from a previous page').optional(),
  })
  .strict();

function encodeCursor(row: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify([row.received_at, row.event_id])).toString('base64url');
}

function decodeCursor(cursor: string): SearchFilters['after'] | null {
  try {
    const [receivedAt, eventId] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    if (typeof receivedAt !== 'string' || !/^[0-9a-f-]{36}$/.test(eventId)) return null;
    return { receivedAt, eventId };
  } catch {
    return null;
  }
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
      const name = issue.path.length ? String(issue.path[0]) : (issue as { keys?: string[] }).keys?.join(', ') ?? 'query';
      res.status(400).json({ error: 'invalid filter', filter: name, message: issue.message });
      return;
    }
    const { cursor, ...rest } = parsed.data;
    const filters: SearchFilters = rest;
    if (cursor !== undefined) {
      const after = decodeCursor(cursor);
      if (after === null) {
        res.status(400).json({ error: 'invalid filter', filter: 'cursor', message: 'must be a next_cursor value from a previous page' });
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
      log.error({ code: (err as { code?: string }).code }, `audit search failed: ${(err as Error).message}`);
      res.status(503).json({ error: 'audit store unavailable', message: 'the audit store did not answer; try again shortly' });
    }
  };
}

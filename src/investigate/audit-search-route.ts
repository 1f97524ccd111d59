import type { Request, Response } from 'express';
import type { AuditStore, SearchFilters } from '../clickhouse';
import type { Logger } from '../log';
import { CURSOR_RULE, SEARCH_HELP, decodeCursor, encodeCursor, filtersOf, parseQuery, searchSchema, storeUnavailable } from './audit-filters';
import { streamExport, type ExportOptions } from './audit-export';

/**
 * GET /audit/transactions: validated filters (a clear 400 naming the first bad one and
 * listing the valid ones), a bounded limit, newest first, and an opaque cursor for the
 * next page. With format=csv|ndjson: an export of every matching row (audit-export.ts).
 * What was asked and how many rows came back go to the access log (res.locals).
 */
export function auditSearchRoute(store: AuditStore, log: Logger, exportOptions: ExportOptions) {
  return async (req: Request, res: Response): Promise<void> => {
    const q = parseQuery(searchSchema, req.query, SEARCH_HELP, res);
    if (q === null) return;
    const filters = filtersOf(q);
    if (q.format === 'csv' || q.format === 'ndjson') return streamExport(store, log, exportOptions, filters, q.format, res);
    res.locals.accessQuery = { ...filters, limit: q.limit, ...(q.cursor !== undefined ? { cursor: true } : {}) };
    const search: SearchFilters = { ...filters, limit: q.limit };
    if (q.cursor !== undefined) {
      const after = decodeCursor(q.cursor);
      if (after === null) {
        res.status(400).json({ error: 'invalid filter', filter: 'cursor', message: CURSOR_RULE, valid: SEARCH_HELP });
        res.locals.accessQuery = { invalid: 'cursor' };
        return;
      }
      search.after = after;
    }
    try {
      const rows = await store.search(search);
      res.locals.accessRows = rows.length;
      const last = rows[rows.length - 1];
      res.json({ transactions: rows, next_cursor: rows.length === search.limit ? encodeCursor(last.received_at, last.event_id) : null });
    } catch (err) {
      storeUnavailable(res, err, log, 'audit search');
    }
  };
}

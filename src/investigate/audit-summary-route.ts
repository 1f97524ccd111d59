import type { Request, Response } from 'express';
import type { AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { SUMMARY_HELP, filtersOf, parseQuery, storeUnavailable, summarySchema } from './audit-filters';

/**
 * GET /audit/summary?group_by=a[,b]&<filters>&limit: counts per group (transactions,
 * refusals, errors, first and last seen), most transactions first, at most `limit`
 * groups (`truncated` when there were more). The same filters as the search.
 */
export function auditSummaryRoute(store: AuditStore, log: Logger) {
  return async (req: Request, res: Response): Promise<void> => {
    const q = parseQuery(summarySchema, req.query, SUMMARY_HELP, res);
    if (q === null) return;
    const filters = filtersOf(q);
    res.locals.accessQuery = { group_by: q.group_by, ...filters, limit: q.limit };
    try {
      const rows = await store.summary(filters, q.group_by, q.limit);
      const truncated = rows.length > q.limit;
      const groups = rows.slice(0, q.limit).map((r) => ({
        key: Object.fromEntries(q.group_by.map((d, i) => [d, r.key[i]])),
        transactions: r.transactions,
        refusals: r.refusals,
        errors: r.errors,
        first_seen: r.first_seen,
        last_seen: r.last_seen,
      }));
      res.locals.accessRows = groups.length;
      res.json({ group_by: q.group_by, groups, truncated });
    } catch (err) {
      storeUnavailable(res, err, log, 'audit summary');
    }
  };
}

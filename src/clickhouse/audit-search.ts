import { SEARCH_COLUMNS } from './audit-columns';

/** Filters of GET /audit/transactions, already validated by the admin API. */
export interface SearchFilters {
  /** Lower case: compared with lower(trace_id), as the record keeps the case the consumer sent. */
  trace_id?: string;
  consumer_asid?: string;
  provider_asid?: string;
  interaction_id?: string;
  outcome?: string;
  error_code?: string;
  status?: number;
  /** ISO 8601, inclusive. */
  from?: string;
  /** ISO 8601, exclusive. */
  to?: string;
  limit: number;
  /** Keyset position: rows strictly older than this (received_at, event_id). */
  after?: { receivedAt: string; eventId: string };
}

/**
 * The search as SQL with every value bound as a parameter (never spliced in), newest
 * first, through FINAL so each transaction is one row.
 */
export function buildSearch(table: string, f: SearchFilters): { query: string; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit };
  const eq = (column: string, type: string, value: unknown) => {
    where.push(`${column} = {${column}:${type}}`);
    params[column] = value;
  };
  if (f.trace_id !== undefined) {
    where.push('lower(trace_id) = {trace_id:String}');
    params.trace_id = f.trace_id.toLowerCase();
  }
  if (f.consumer_asid !== undefined) eq('consumer_asid', 'String', f.consumer_asid);
  if (f.provider_asid !== undefined) eq('provider_asid', 'String', f.provider_asid);
  if (f.interaction_id !== undefined) eq('interaction_id', 'String', f.interaction_id);
  if (f.outcome !== undefined) eq('outcome', 'String', f.outcome);
  if (f.error_code !== undefined) eq('error_code', 'String', f.error_code);
  if (f.status !== undefined) eq('status', 'UInt16', f.status);
  if (f.from !== undefined) {
    where.push("received_at >= parseDateTime64BestEffort({from:String}, 3, 'UTC')");
    params.from = f.from;
  }
  if (f.to !== undefined) {
    where.push("received_at < parseDateTime64BestEffort({to:String}, 3, 'UTC')");
    params.to = f.to;
  }
  if (f.after !== undefined) {
    where.push(
      "(received_at < parseDateTime64BestEffort({after_at:String}, 3, 'UTC') OR (received_at = parseDateTime64BestEffort({after_at:String}, 3, 'UTC') AND event_id < toUUID({after_id:String})))",
    );
    params.after_at = f.after.receivedAt;
    params.after_id = f.after.eventId;
  }
  // Raw columns: an alias named like a column would shadow it in WHERE (ClickHouse resolves aliases there).
  const query =
    `SELECT ${SEARCH_COLUMNS.join(', ')} FROM ${table} FINAL` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ' ORDER BY received_at DESC, event_id DESC LIMIT {limit:UInt32}';
  return { query, params };
}

/** ClickHouse's DateTime64 text ("2026-11-21 07:29:13.237") as ISO 8601 UTC ("2026-11-21T07:29:13.237Z"). */
export function isoTimes<T extends Record<string, unknown>>(row: T): T {
  for (const key of ['received_at', 'completed_at']) {
    const v = row[key];
    if (typeof v === 'string' && v.length >= 19 && v[10] === ' ') (row as Record<string, unknown>)[key] = `${v.replace(' ', 'T')}Z`;
  }
  return row;
}

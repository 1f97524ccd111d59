import type { KeysetPosition } from './audit-search';

/** One use of the audit API, as the access_log table keeps it (migration 6). */
export interface AccessLogRow {
  event_id: string;
  /** ISO 8601 UTC: when the request finished. */
  at: string;
  /** The admin token's name; `anonymous` without ADMIN_TOKENS_FILE; empty for a 401 (nobody was identified). */
  who: string;
  role: string;
  client_ip: string;
  /** search, export, summary, verify, public_key, access_log, sql (unknown for a path no route serves). */
  action: string;
  method: string;
  /** The route's own path (never the request's: that is the caller's text). */
  route: string;
  /** What was asked, as JSON: the validated filters; for SQL, the statement with literals replaced and its SHA-256. */
  query: string;
  status: number;
  rows: number;
  bytes: number;
  duration_ms: number;
  /** An export's SHA-256 (its manifest's), else empty. */
  sha256: string;
  gateway_instance: string;
}

export interface AccessLogFilters {
  who?: string;
  action?: string;
  /** ISO 8601, inclusive. */
  from?: string;
  /** ISO 8601, exclusive. */
  to?: string;
  limit: number;
  after?: KeysetPosition;
}

/** Columns GET /audit/access-log answers with. */
export const ACCESS_LOG_COLUMNS = [
  'at',
  'who',
  'role',
  'client_ip',
  'action',
  'method',
  'route',
  'query',
  'status',
  'rows',
  'bytes',
  'duration_ms',
  'sha256',
  'event_id',
];

/** The access-log search, newest first, values bound as parameters. */
export function buildAccessLogSearch(table: string, f: AccessLogFilters): { query: string; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit };
  const at = (p: string) => `parseDateTime64BestEffort({${p}:String}, 3, 'UTC')`;
  if (f.who !== undefined) {
    where.push('who = {who:String}');
    params.who = f.who;
  }
  if (f.action !== undefined) {
    where.push('action = {action:String}');
    params.action = f.action;
  }
  if (f.from !== undefined) {
    where.push(`at >= ${at('from')}`);
    params.from = f.from;
  }
  if (f.to !== undefined) {
    where.push(`at < ${at('to')}`);
    params.to = f.to;
  }
  if (f.after !== undefined) {
    where.push(`(at < ${at('after_at')} OR (at = ${at('after_at')} AND event_id < toUUID({after_id:String})))`);
    params.after_at = f.after.receivedAt;
    params.after_id = f.after.eventId;
  }
  // FINAL: an insert retried after a lost answer is kept once (same event_id).
  const query =
    `SELECT ${ACCESS_LOG_COLUMNS.join(', ')} FROM ${table} FINAL${where.length ? ` WHERE ${where.join(' AND ')}` : ''}` +
    ' ORDER BY at DESC, event_id DESC LIMIT {limit:UInt32}';
  return { query, params };
}

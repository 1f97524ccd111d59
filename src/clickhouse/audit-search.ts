import { AUDIT_COLUMNS, SEARCH_COLUMNS } from './audit-columns';

/** Filters of GET /audit/transactions, /audit/summary and exports, already validated by the admin API. */
export interface SearchFilters {
  /** Lower case: compared with lower(trace_id), as the record keeps the case the consumer sent. */
  trace_id?: string;
  consumer_asid?: string;
  provider_asid?: string;
  consumer_ods?: string;
  provider_ods?: string;
  interaction_id?: string;
  outcome?: string;
  error_code?: string;
  environment?: string;
  jwt_requesting_organization?: string;
  /** A JWT rule code (src/check): rows whose jwt_findings hold it. */
  jwt_finding?: string;
  /** An interaction finding code (src/check): rows whose interaction_findings hold it. */
  interaction_finding?: string;
  status?: number;
  /** ISO 8601, inclusive. */
  from?: string;
  /** ISO 8601, exclusive. */
  to?: string;
  limit: number;
  /** Keyset position: rows strictly older than this (received_at, event_id). */
  after?: KeysetPosition;
}

/** A row's place in the newest-first order: its received_at (ISO 8601 UTC, milliseconds) and event id. */
export interface KeysetPosition {
  receivedAt: string;
  eventId: string;
}

/** The filters that compare one column for equality, with the type their parameter is bound as. */
const EQUALITY_FILTERS = [
  ['consumer_asid', 'String'],
  ['provider_asid', 'String'],
  ['consumer_ods', 'String'],
  ['provider_ods', 'String'],
  ['interaction_id', 'String'],
  ['outcome', 'String'],
  ['error_code', 'String'],
  ['environment', 'String'],
  ['jwt_requesting_organization', 'String'],
  ['status', 'UInt16'],
] as const;

/** The filters that ask whether a list column holds one code (the checks' findings). */
const LIST_FILTERS = [
  ['jwt_finding', 'jwt_findings'],
  ['interaction_finding', 'interaction_findings'],
] as const;

const AT = (param: string) => `parseDateTime64BestEffort({${param}:String}, 3, 'UTC')`;

/** The WHERE conditions of a filter set, every value bound as a parameter (never spliced in). */
export function filterConditions(f: Omit<SearchFilters, 'limit'>): { where: string[]; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = {};
  if (f.trace_id !== undefined) {
    where.push('lower(trace_id) = {trace_id:String}');
    params.trace_id = f.trace_id.toLowerCase();
  }
  for (const [column, type] of EQUALITY_FILTERS) {
    const value = f[column];
    if (value === undefined) continue;
    where.push(`${column} = {${column}:${type}}`);
    params[column] = value;
  }
  for (const [filter, column] of LIST_FILTERS) {
    const value = f[filter];
    if (value === undefined) continue;
    where.push(`has(${column}, {${filter}:String})`);
    params[filter] = value;
  }
  if (f.from !== undefined) {
    where.push(`received_at >= ${AT('from')}`);
    params.from = f.from;
  }
  if (f.to !== undefined) {
    where.push(`received_at < ${AT('to')}`);
    params.to = f.to;
  }
  if (f.after !== undefined) {
    where.push(`(received_at < ${AT('after_at')} OR (received_at = ${AT('after_at')} AND event_id < toUUID({after_id:String})))`);
    params.after_at = f.after.receivedAt;
    params.after_id = f.after.eventId;
  }
  return { where, params };
}

const whereSql = (where: readonly string[]) => (where.length ? ` WHERE ${where.join(' AND ')}` : '');

/**
 * The search as SQL with every value bound as a parameter (never spliced in), newest
 * first, through FINAL so each transaction is one row.
 */
export function buildSearch(table: string, f: SearchFilters): { query: string; params: Record<string, unknown> } {
  const { where, params } = filterConditions(f);
  params.limit = f.limit;
  // Raw columns: an alias named like a column would shadow it in WHERE (ClickHouse resolves aliases there).
  const query = `SELECT ${SEARCH_COLUMNS.join(', ')} FROM ${table} FINAL${whereSql(where)} ORDER BY received_at DESC, event_id DESC LIMIT {limit:UInt32}`;
  return { query, params };
}

/**
 * The key of the `pageSize`-th row after the filters' position (only the key columns are
 * read and sorted, which is cheap), or nothing when fewer rows are left.
 */
export function buildExportBoundary(table: string, f: Omit<SearchFilters, 'limit'>, pageSize: number): { query: string; params: Record<string, unknown> } {
  const { where, params } = filterConditions(f);
  params.offset = pageSize - 1;
  const query =
    `SELECT toString(received_at) AS at, toString(event_id) AS id FROM ${table} FINAL${whereSql(where)}` +
    ' ORDER BY received_at DESC, event_id DESC LIMIT 1 OFFSET {offset:UInt32}';
  return { query, params };
}

/**
 * A time window of an export (README "Export", "How it streams"): milliseconds since
 * 1970, `from` inclusive, `to` exclusive; an open end when absent.
 */
export interface ExportWindow {
  from?: number;
  to?: number;
}

/**
 * A window's bounds as PREWHERE conditions: only `received_at` (the sorting key's second
 * column) is read before FINAL, and the other columns only of the granules that hold the
 * window's rows. Safe before FINAL: every version of a transaction has the same sorting
 * key, so a window keeps or drops them all. (A filter on any other column stays in WHERE,
 * after FINAL: an in-flight version may differ from the final one there.)
 */
function windowConditions(w: ExportWindow, params: Record<string, unknown>): string[] {
  const where: string[] = [];
  if (w.from !== undefined) {
    where.push("received_at >= fromUnixTimestamp64Milli({window_from:Int64}, 'UTC')");
    params.window_from = w.from;
  }
  if (w.to !== undefined) {
    where.push("received_at < fromUnixTimestamp64Milli({window_to:Int64}, 'UTC')");
    params.window_to = w.to;
  }
  return where;
}

/**
 * How many rows match the filters (within `within`) per time bucket of `widthMs`, newest
 * first: `start` the bucket's first millisecond. Read without FINAL (only `received_at`
 * and the filters' columns): each count is an upper bound of the transactions there
 * (an in-flight version counts too), which is all an export's window plan needs.
 */
export function buildExportDistribution(
  table: string,
  f: Omit<SearchFilters, 'limit' | 'after'>,
  widthMs: number,
  within: ExportWindow = {},
): { query: string; params: Record<string, unknown> } {
  const { where, params } = filterConditions(f);
  where.push(...windowConditions(within, params));
  params.width = widthMs;
  const query =
    `SELECT toString(intDiv(toUnixTimestamp64Milli(received_at), {width:UInt64}) * {width:UInt64}) AS start, toString(count()) AS n` +
    ` FROM ${table}${whereSql(where)} GROUP BY start ORDER BY toUInt64(start) DESC`;
  return { query, params };
}

/** Export columns: every search column, times as ISO 8601 UTC with milliseconds (as the JSON search answers them). */
export const EXPORT_COLUMNS: readonly string[] = SEARCH_COLUMNS;
const NUMERIC_TYPES = new Set(['UInt8', 'UInt16', 'UInt64', 'Float64']);
/** How each export column is written: a number, a time, text, or a list of codes (the findings). */
export type ExportKind = 'number' | 'time' | 'text' | 'list';
const EXPORT_TYPES = EXPORT_COLUMNS.map((name) => AUDIT_COLUMNS.find((c) => c.name === name)!.type);
export const EXPORT_KINDS: readonly ExportKind[] = EXPORT_TYPES.map((type) =>
  NUMERIC_TYPES.has(type) ? 'number' : type.startsWith('DateTime64') ? 'time' : type.startsWith('Array(') ? 'list' : 'text',
);
/**
 * A list in a CSV cell: its items joined by this (codes hold no space), then written as any
 * text cell (so a forged item that looks like a formula is neutralised too). NDJSON keeps
 * the list a JSON array, as the search answers it.
 */
export const CSV_LIST_SEPARATOR = ' ';

/**
 * A text cell a spreadsheet would run as a formula starts with = + - @ tab or CR (or their
 * full-width forms, which some spreadsheets fold to them): it is written with a single
 * quote before it, as csv-stringify's `escape_formulas` does (OWASP "CSV injection").
 */
const FORMULA_START = "'^[=+\\\\-@\\t\\r\uFF1D\uFF0B\uFF0D\uFF20]'";

/** One CSV cell of a text column (RFC 4180): formula-looking text neutralised, quoted when it holds a quote, comma, CR or LF. */
function csvTextCell(column: string): string {
  const v = `if(match(${column}, ${FORMULA_START}), concat('''', ${column}), ${column})`;
  return `if(match(${column}, '[",\\r\\n]'), concat('"', replaceAll(${v}, '"', '""'), '"'), ${v})`;
}

/** One NDJSON value. Float64 may hold nan or inf, which JSON cannot: null. */
function jsonValue(column: string, kind: ExportKind, type: string): string {
  if (kind === 'list') return `toJSONString(arrayMap(x -> toString(x), ${column}))`;
  if (kind === 'number') return type === 'Float64' ? `if(isFinite(${column}), toString(${column}), 'null')` : `toString(${column})`;
  if (kind === 'time') return `'"', replaceOne(toString(${column}), ' ', 'T'), 'Z"'`;
  return `toJSONString(toString(${column}))`;
}

/**
 * One export page: one text column, each row already a CSV record or an NDJSON object,
 * built by the engine (off the gateway's event loop; at the lowest OS priority when
 * embedded), newest first: at most `limit` rows after the filters' keyset position (the
 * caller reads the last row's key from the page for the next one), within `window` when
 * given (PREWHERE, see windowConditions). NDJSON is read as
 * TabSeparatedRaw (JSON escapes every control character, so a row is a line); CSV as
 * TabSeparated, whose escapes keep a row on one line even when a cell holds a line break
 * (the caller undoes them).
 */
export function buildExportPage(
  table: string,
  f: Omit<SearchFilters, 'limit'>,
  limit: number,
  format: 'csv' | 'ndjson',
  window?: ExportWindow,
): { query: string; params: Record<string, unknown> } {
  const { where, params } = filterConditions(f);
  params.limit = limit;
  const prewhere = window === undefined ? [] : windowConditions(window, params);
  const inner =
    `SELECT ${EXPORT_COLUMNS.join(', ')} FROM ${table} FINAL${prewhere.length ? ` PREWHERE ${prewhere.join(' AND ')}` : ''}${whereSql(where)}` +
    ' ORDER BY received_at DESC, event_id DESC LIMIT {limit:UInt32}';
  const line =
    format === 'csv'
      ? EXPORT_COLUMNS.map((name, i) => {
          const kind = EXPORT_KINDS[i];
          if (kind === 'number') return `toString(${name})`;
          if (kind === 'time') return `concat(replaceOne(toString(${name}), ' ', 'T'), 'Z')`;
          if (kind === 'list') return csvTextCell(`arrayStringConcat(${name}, '${CSV_LIST_SEPARATOR}')`);
          return csvTextCell(`toString(${name})`);
        }).join(", ',', ")
      : `${EXPORT_COLUMNS.map((name, i) => `'${i === 0 ? '{' : ','}"${name}":', ${jsonValue(name, EXPORT_KINDS[i], EXPORT_TYPES[i])}`).join(', ')}, '}'`;
  // Outside the inner query: the line's alias cannot shadow a column its WHERE reads.
  return { query: `SELECT concat(${line}) AS line FROM (${inner}) SETTINGS output_format_json_escape_forward_slashes = 0`, params };
}

/** Dimensions a summary may group by, with the expression each one groups on. */
export const SUMMARY_DIMENSIONS = {
  consumer_asid: 'consumer_asid',
  consumer_ods: 'consumer_ods',
  provider_asid: 'provider_asid',
  provider_ods: 'provider_ods',
  interaction_id: 'interaction_id',
  outcome: 'outcome',
  error_code: 'error_code',
  environment: 'environment',
  jwt_requesting_organization: 'jwt_requesting_organization',
  // One group per code a transaction's list holds (a transaction with two findings counts in both groups);
  // a transaction with none in the group '' (so the groups still account for every transaction).
  jwt_finding: "arrayJoin(if(empty(jwt_findings), [''], jwt_findings))",
  interaction_finding: "arrayJoin(if(empty(interaction_findings), [''], interaction_findings))",
  hour: 'toStartOfHour(received_at)',
  day: 'toStartOfDay(received_at)',
} as const;
export type SummaryDimension = keyof typeof SUMMARY_DIMENSIONS;

/** Outcomes that are the gateway's own refusals (README "Refusals": every refusal is recorded `denied`). */
export const REFUSAL_OUTCOMES: readonly string[] = ['denied'];
/**
 * Outcomes that are failures: the provider's (`upstream_error`: refused, reset or broken
 * reply; `upstream_timeout`) and the gateway's (`interrupted`: it stopped mid-transaction).
 * A consumer that went away (`client_aborted`, `client_timeout`) is neither.
 */
export const ERROR_OUTCOMES: readonly string[] = ['upstream_error', 'upstream_timeout', 'interrupted'];

const quoted = (values: readonly string[]) => values.map((v) => `'${v}'`).join(', ');

/**
 * A summary: one row per group of the one or two dimensions, most transactions first,
 * at most `limit + 1` rows (the extra one says the answer was truncated).
 */
export function buildSummary(
  table: string,
  f: Omit<SearchFilters, 'limit'>,
  groupBy: readonly SummaryDimension[],
  limit: number,
): { query: string; params: Record<string, unknown> } {
  const { where, params } = filterConditions(f);
  params.limit = limit + 1;
  // k0, k1: aliases no column has, so they shadow nothing the WHERE reads.
  const keys = groupBy.map((d, i) => `toString(${SUMMARY_DIMENSIONS[d]}) AS k${i}`);
  const names = groupBy.map((_d, i) => `k${i}`);
  const query =
    `SELECT ${keys.join(', ')}, count() AS transactions, countIf(outcome IN (${quoted(REFUSAL_OUTCOMES)})) AS refusals,` +
    ` countIf(outcome IN (${quoted(ERROR_OUTCOMES)})) AS errors, toString(min(received_at)) AS first_seen, toString(max(received_at)) AS last_seen` +
    ` FROM ${table} FINAL${whereSql(where)} GROUP BY ${names.join(', ')} ORDER BY transactions DESC, ${names.join(', ')} LIMIT {limit:UInt32}`;
  return { query, params };
}

/** ClickHouse's DateTime text ("2026-11-21 07:29:13.237" or "2026-11-21 07:00:00") as ISO 8601 UTC ("2026-11-21T07:29:13.237Z"). */
export function isoTime(v: string): string {
  return v.length >= 19 && v[10] === ' ' ? `${v.slice(0, 10)}T${v.slice(11)}Z` : v;
}

/** ClickHouse's DateTime64 text ("2026-11-21 07:29:13.237") as ISO 8601 UTC ("2026-11-21T07:29:13.237Z"). */
export function isoTimes<T extends Record<string, unknown>>(row: T): T {
  for (const key of ['received_at', 'completed_at']) {
    const v = row[key];
    if (typeof v === 'string') (row as Record<string, unknown>)[key] = isoTime(v);
  }
  return row;
}

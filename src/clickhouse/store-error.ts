import { GatewayError } from '../errors';

/**
 * A failure of the audit store, classified once at the boundary (clickhouse-js's habit):
 * the shipper retries transient ones forever and dead-letters permanent ones, by `transient`,
 * never by reading message text.
 */
export class AuditStoreError extends GatewayError {
  /** `code`: ClickHouse's error number ("60"), or the connection's (ECONNREFUSED), as the store gave it. */
  constructor(
    code: string,
    readonly transient: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** The store's settings cannot work (CLICKHOUSE_URL names a database that is not a plain identifier). */
export class StoreConfigError extends GatewayError {
  constructor(message: string) {
    super('GW_ERR_STORE_CONFIG', message);
  }
}

/** ClickHouse error codes that mean "this batch will never fit as it is": fix, then replay. */
const PERMANENT_CLICKHOUSE_CODES = new Set([
  '6', // CANNOT_PARSE_TEXT
  '16', // NO_SUCH_COLUMN_IN_TABLE
  '26', // CANNOT_PARSE_QUOTED_STRING
  '27', // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  '38', // CANNOT_PARSE_DATE
  '41', // CANNOT_PARSE_DATETIME
  '43', // ILLEGAL_TYPE_OF_ARGUMENT
  '47', // UNKNOWN_IDENTIFIER
  '53', // TYPE_MISMATCH
  '60', // UNKNOWN_TABLE
  '70', // CANNOT_CONVERT_TYPE
  '72', // CANNOT_PARSE_NUMBER
  '81', // UNKNOWN_DATABASE
  '117', // INCORRECT_DATA
  '192', // UNKNOWN_USER
  '497', // ACCESS_DENIED
  '516', // AUTHENTICATION_FAILED
]);

/**
 * Everything else is transient: connection refused or reset, timeouts, 5xx, too many
 * parts (252), memory limits (241), a server restarting. Unknown failures count as
 * transient too: retrying costs time, while dead-lettering a good batch costs an operator.
 */
export function classifyStoreError(err: unknown): AuditStoreError {
  if (err instanceof AuditStoreError) return err;
  const e = err as { code?: string | number; type?: string; message?: string };
  // Servers before 19.x word errors "Code: 60, e.displayText() = ...", which the client
  // does not parse into `code`: read the number from that fixed prefix (anchored, no backtracking).
  const legacy = e.code === undefined ? /^Code: (\d{1,5})[.,]/.exec(e.message ?? '') : null;
  const code = e.code !== undefined ? String(e.code) : legacy ? legacy[1] : (e.type ?? 'UNKNOWN');
  const permanent = PERMANENT_CLICKHOUSE_CODES.has(code);
  return new AuditStoreError(code, !permanent, (e.message ?? String(err)).split('\n')[0].slice(0, 300), { cause: err });
}

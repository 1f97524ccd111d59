import { hash } from 'node:crypto';

/**
 * The canonical form of a final audit record, version 1: what its `record_hash` is the
 * SHA-256 of, and what `verify` recomputes from the stored row.
 *
 * The record's values in this order, each written as `<UTF-8 byte length>:<text>` and
 * concatenated, where the text of
 * - a `text` column is the value itself (a UUID in lower case, as written);
 * - a `number` column is its shortest decimal form (JavaScript's `String(n)`, which
 *   ClickHouse's `toString` matches for the values records hold);
 * - a `time` column is its epoch milliseconds as an integer.
 * The length prefix makes the form unambiguous: no value can borrow bytes from its
 * neighbour, whatever it contains.
 *
 * Frozen: a column added to the table later joins a version 2 of this list, never this
 * one, so records hashed under version 1 verify forever. `version` (1 in flight, 2 final)
 * is left out: only final records are hashed; `record_hash` is the result.
 */
export type CanonicalKind = 'text' | 'number' | 'time';

export const CANONICAL_V1: readonly (readonly [name: string, kind: CanonicalKind])[] = [
  ['event_id', 'text'],
  ['trace_id', 'text'],
  ['received_at', 'time'],
  ['completed_at', 'time'],
  ['duration_ms', 'number'],
  ['consumer_asid', 'text'],
  ['consumer_ods', 'text'],
  ['provider_asid', 'text'],
  ['provider_ods', 'text'],
  ['interaction_id', 'text'],
  ['method', 'text'],
  ['target_host', 'text'],
  ['endpoint', 'text'],
  ['status', 'number'],
  ['outcome', 'text'],
  ['error_code', 'text'],
  ['failure_reason', 'text'],
  ['request_bytes', 'number'],
  ['response_bytes', 'number'],
  ['upstream_ttfb_ms', 'number'],
  ['upstream_connect_ms', 'number'],
  ['client_ip', 'text'],
  ['jwt_requesting_organization', 'text'],
  ['jwt_practitioner_id', 'text'],
  ['jwt_practitioner_role', 'text'],
  ['jwt_device', 'text'],
  ['jwt_reason_for_request', 'text'],
  ['jwt_requested_scope', 'text'],
  ['gateway_instance', 'text'],
  ['environment', 'text'],
  ['client_cert_subject', 'text'],
  ['client_cert_issuer', 'text'],
  ['client_cert_serial', 'text'],
  ['client_cert_sha256', 'text'],
  ['tls_protocol', 'text'],
  ['tls_cipher', 'text'],
  ['seal_chain', 'text'],
  ['seal_period', 'number'],
  ['seq', 'number'],
];

/** A record's values by column name: strings as stored, numbers, times as epoch milliseconds. */
export type CanonicalValues = Readonly<Record<string, string | number>>;

/** The canonical text of a record (version 1): see the comment above. */
export function canonicalText(values: CanonicalValues): string {
  let out = '';
  for (const [name, kind] of CANONICAL_V1) {
    const v = values[name];
    if (v === undefined) throw new Error(`canonical form: the record has no ${name}`);
    const t = kind === 'text' ? String(v) : String(Number(v));
    out += `${Buffer.byteLength(t)}:${t}`;
  }
  return out;
}

/** The record's hash: SHA-256 of its canonical text, in lower-case hex. */
export function recordHash(values: CanonicalValues): string {
  return hash('sha256', canonicalText(values), 'hex');
}

/**
 * The same hash as a ClickHouse expression over the stored row, for `verify` to compute
 * next to the data. `timeExpr` renders a time column as epoch milliseconds in the store's
 * type (`toUnixTimestamp64Milli(c)` for DateTime64); `numberExpr` a number column as a
 * value whose toString is the shortest form (`toFloat64(c)` for a Decimal column).
 */
export function recordHashSql(
  timeExpr: (column: string) => string = (c) => `toUnixTimestamp64Milli(${c})`,
  numberExpr: (column: string) => string = (c) => c,
): string {
  const parts = CANONICAL_V1.map(([name, kind]) => {
    const text = kind === 'time' ? `toString(${timeExpr(name)})` : kind === 'number' ? `toString(${numberExpr(name)})` : `toString(${name})`;
    return `toString(length(${text})), ':', ${text}`;
  });
  return `lower(hex(SHA256(concat(${parts.join(', ')}))))`;
}

/**
 * The audit table's columns, in table order: the one list every other copy is derived
 * from or checked against. The search projection is derived from it (SEARCH_COLUMNS).
 * The record encoder (src/audit/audit-record.ts) is built by hand for speed, the
 * migrations are history (a shipped migration's text never changes), the 18.16 test DDL
 * is fixed for that server and the README's cluster DDL is for people to copy:
 * test/unit/clickhouse/audit-columns.test.ts fails when
 * any of them lacks a column of this list, has one it does not, or (for the migrations)
 * adds it with another type or in another migration.
 *
 * To add a column: a row here (with the number of the migration that adds it), that
 * migration, the key in the encoder, and the column in the 18.16 DDL and the README's.
 */
export interface AuditColumn {
  readonly name: string;
  /** The ClickHouse type, as the migration declares it (codecs and defaults aside). */
  readonly type: string;
  /** The migration that added the column. */
  readonly migration: number;
}

const DATETIME = "DateTime64(3, 'UTC')";
const LC = 'LowCardinality(String)';

export const AUDIT_COLUMNS: readonly AuditColumn[] = [
  { name: 'event_id', type: 'UUID', migration: 1 },
  { name: 'version', type: 'UInt8', migration: 1 },
  { name: 'trace_id', type: 'String', migration: 1 },
  { name: 'received_at', type: DATETIME, migration: 1 },
  { name: 'completed_at', type: DATETIME, migration: 1 },
  { name: 'duration_ms', type: 'Float64', migration: 1 },
  { name: 'consumer_asid', type: LC, migration: 1 },
  { name: 'consumer_ods', type: LC, migration: 1 },
  { name: 'provider_asid', type: LC, migration: 1 },
  { name: 'provider_ods', type: LC, migration: 1 },
  { name: 'interaction_id', type: LC, migration: 1 },
  { name: 'method', type: LC, migration: 1 },
  { name: 'target_host', type: LC, migration: 1 },
  { name: 'endpoint', type: LC, migration: 1 },
  { name: 'status', type: 'UInt16', migration: 1 },
  { name: 'outcome', type: LC, migration: 1 },
  { name: 'error_code', type: LC, migration: 1 },
  { name: 'failure_reason', type: LC, migration: 1 },
  { name: 'request_bytes', type: 'UInt64', migration: 1 },
  { name: 'response_bytes', type: 'UInt64', migration: 1 },
  { name: 'upstream_ttfb_ms', type: 'Float64', migration: 1 },
  { name: 'upstream_connect_ms', type: 'Float64', migration: 2 },
  { name: 'client_ip', type: 'String', migration: 1 },
  { name: 'jwt_requesting_organization', type: LC, migration: 1 },
  { name: 'jwt_practitioner_id', type: 'String', migration: 1 },
  { name: 'jwt_practitioner_role', type: 'String', migration: 1 },
  { name: 'jwt_device', type: LC, migration: 1 },
  { name: 'jwt_reason_for_request', type: LC, migration: 1 },
  { name: 'jwt_requested_scope', type: LC, migration: 1 },
  { name: 'gateway_instance', type: LC, migration: 1 },
  { name: 'environment', type: LC, migration: 1 },
  { name: 'client_cert_subject', type: 'String', migration: 3 },
  { name: 'client_cert_issuer', type: LC, migration: 3 },
  { name: 'client_cert_serial', type: 'String', migration: 3 },
  { name: 'client_cert_sha256', type: 'String', migration: 3 },
  { name: 'tls_protocol', type: LC, migration: 3 },
  { name: 'tls_cipher', type: LC, migration: 3 },
  { name: 'seal_chain', type: LC, migration: 4 },
  { name: 'seal_period', type: 'UInt64', migration: 4 },
  { name: 'seq', type: 'UInt64', migration: 4 },
  { name: 'record_hash', type: 'String', migration: 4 },
  { name: 'jwt_findings', type: 'Array(LowCardinality(String))', migration: 7 },
  { name: 'interaction_findings', type: 'Array(LowCardinality(String))', migration: 7 },
  { name: 'canonical_form', type: 'UInt8', migration: 7 },
];

/** What the audit search returns: every column but `version` (FINAL keeps the highest; it says nothing more). */
export const SEARCH_COLUMNS: readonly string[] = AUDIT_COLUMNS.filter((c) => c.name !== 'version').map((c) => c.name);

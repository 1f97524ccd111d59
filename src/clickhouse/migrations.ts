/**
 * Versioned schema migrations for the audit store, applied in order, each once, recorded
 * in `schema_migrations`. Current ClickHouse (tested on 26.7 through chDB; needs 23.3 or
 * newer for the DDL used here). `{db}` is the database name.
 *
 * Design for the security team's queries: one row per transaction (a ReplacingMergeTree
 * keeps the highest `version`: 1 = in flight, 2 = final; replayed batches collapse too,
 * and queries read with FINAL); partitioned by month; ORDER BY serves a consumer ASID
 * plus a time range; skip indexes serve trace-ID and provider-ASID look-ups;
 * LowCardinality for the small vocabularies; delta codecs for times and sizes.
 */
export interface Migration {
  version: number;
  description: string;
  statements: string[];
}

export const migrations: Migration[] = [
  {
    version: 1,
    description: 'transactions table',
    statements: [
      `CREATE TABLE IF NOT EXISTS {db}.transactions
      (
        event_id UUID,
        version UInt8,
        trace_id String,
        received_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        completed_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        duration_ms Float64 CODEC(Gorilla, ZSTD(1)),
        consumer_asid LowCardinality(String),
        consumer_ods LowCardinality(String),
        provider_asid LowCardinality(String),
        provider_ods LowCardinality(String),
        interaction_id LowCardinality(String),
        method LowCardinality(String),
        target_host LowCardinality(String),
        endpoint LowCardinality(String),
        status UInt16,
        outcome LowCardinality(String),
        error_code LowCardinality(String),
        failure_reason LowCardinality(String),
        request_bytes UInt64 CODEC(T64, ZSTD(1)),
        response_bytes UInt64 CODEC(T64, ZSTD(1)),
        upstream_ttfb_ms Float64 CODEC(Gorilla, ZSTD(1)),
        client_ip String,
        jwt_requesting_organization LowCardinality(String),
        jwt_practitioner_id String,
        jwt_practitioner_role String,
        jwt_device LowCardinality(String),
        jwt_reason_for_request LowCardinality(String),
        jwt_requested_scope LowCardinality(String),
        gateway_instance LowCardinality(String),
        environment LowCardinality(String),
        INDEX trace_id_idx trace_id TYPE bloom_filter(0.01) GRANULARITY 4,
        INDEX provider_asid_idx provider_asid TYPE set(1000) GRANULARITY 4
      )
      ENGINE = ReplacingMergeTree(version)
      PARTITION BY toYYYYMM(received_at)
      ORDER BY (consumer_asid, received_at, event_id)`,
    ],
  },
  {
    version: 2,
    description: 'provider connect time',
    statements: [
      'ALTER TABLE {db}.transactions ADD COLUMN IF NOT EXISTS upstream_connect_ms Float64 DEFAULT -1 CODEC(Gorilla, ZSTD(1)) AFTER upstream_ttfb_ms',
    ],
  },
  {
    version: 3,
    description: 'consumer TLS: client certificate and connection facts',
    statements: [
      `ALTER TABLE {db}.transactions
        ADD COLUMN IF NOT EXISTS client_cert_subject String DEFAULT '' AFTER environment,
        ADD COLUMN IF NOT EXISTS client_cert_issuer LowCardinality(String) DEFAULT '' AFTER client_cert_subject,
        ADD COLUMN IF NOT EXISTS client_cert_serial String DEFAULT '' AFTER client_cert_issuer,
        ADD COLUMN IF NOT EXISTS client_cert_sha256 String DEFAULT '' AFTER client_cert_serial,
        ADD COLUMN IF NOT EXISTS tls_protocol LowCardinality(String) DEFAULT '' AFTER client_cert_sha256,
        ADD COLUMN IF NOT EXISTS tls_cipher LowCardinality(String) DEFAULT '' AFTER tls_protocol`,
    ],
  },
  {
    version: 4,
    description: 'tamper evidence: seal chain, seal period, sequence number and record hash',
    statements: [
      `ALTER TABLE {db}.transactions
        ADD COLUMN IF NOT EXISTS seal_chain LowCardinality(String) DEFAULT '' AFTER tls_cipher,
        ADD COLUMN IF NOT EXISTS seal_period UInt64 DEFAULT 0 AFTER seal_chain,
        ADD COLUMN IF NOT EXISTS seq UInt64 DEFAULT 0 AFTER seal_period,
        ADD COLUMN IF NOT EXISTS record_hash String DEFAULT '' AFTER seq`,
    ],
  },
  {
    version: 5,
    description: 'audit seals: one signed digest per seal period, kept apart from the rows',
    statements: [
      `CREATE TABLE IF NOT EXISTS {db}.audit_seals
      (
        chain String,
        instance LowCardinality(String),
        period_start DateTime64(3, 'UTC'),
        period_end DateTime64(3, 'UTC'),
        first_seq UInt64,
        last_seq UInt64,
        records UInt64,
        dropped Array(UInt64),
        records_root String,
        previous_digest String,
        sealed_at DateTime64(3, 'UTC'),
        key_id String,
        digest String,
        signature String
      )
      ENGINE = ReplacingMergeTree
      ORDER BY (chain, period_start)`,
    ],
  },
  {
    version: 6,
    description: 'access log: every use of the audit API, refused ones included',
    statements: [
      `CREATE TABLE IF NOT EXISTS {db}.access_log
      (
        event_id UUID,
        at DateTime64(3, 'UTC'),
        who LowCardinality(String),
        role LowCardinality(String),
        client_ip String,
        action LowCardinality(String),
        method LowCardinality(String),
        route LowCardinality(String),
        query String,
        status UInt16,
        rows UInt64,
        bytes UInt64,
        duration_ms Float64,
        sha256 String,
        gateway_instance LowCardinality(String)
      )
      ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(at)
      ORDER BY (at, event_id)`,
    ],
  },
  {
    version: 7,
    description: "integrator checks: the token's and the interaction's findings, and the record's canonical form",
    statements: [
      `ALTER TABLE {db}.transactions
        ADD COLUMN IF NOT EXISTS jwt_findings Array(LowCardinality(String)) DEFAULT [] AFTER record_hash,
        ADD COLUMN IF NOT EXISTS interaction_findings Array(LowCardinality(String)) DEFAULT [] AFTER jwt_findings,
        ADD COLUMN IF NOT EXISTS canonical_form UInt8 DEFAULT 1 AFTER interaction_findings`,
    ],
  },
];

/**
 * Retention is a setting, not a migration: applied (idempotently) at every start. Two TTL
 * rules: every row after AUDIT_RETENTION_DAYS, and rows of test consumers (environment
 * `test`) after AUDIT_TEST_RETENTION_DAYS, so test traffic does not sit for years beside
 * live. Whichever comes first applies. `TTL ... DELETE WHERE` needs ClickHouse 20.5 or
 * later (the managed schema needs 23.3 anyway). Unchanged rules are a no-op; changed ones
 * make the server re-apply the TTL to the existing parts once, in the background.
 */
export function retentionStatement(retentionDays: number, testRetentionDays: number): string {
  return (
    `ALTER TABLE {db}.transactions MODIFY TTL toDateTime(received_at) + INTERVAL ${Math.floor(retentionDays)} DAY, ` +
    `toDateTime(received_at) + INTERVAL ${Math.floor(testRetentionDays)} DAY DELETE WHERE environment = 'test'`
  );
}

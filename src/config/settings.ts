import { availableParallelism } from 'node:os';
import { z } from 'zod';

/**
 * Every setting the gateway reads, with its default, in one place.
 * Names are the environment variables of the contract (docs/interface.md);
 * the optional YAML file uses the same names in lower case, nested or dotted.
 */
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().min(1);
const flag = z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']).transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');
const methodList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m.length > 0),
  )
  .pipe(z.array(z.string().regex(/^[A-Z]+$/, 'methods are upper-case tokens such as GET')).min(1));

export const settingsSchema = z
  .object({
    /** Consumer-facing proxy port. Default 8080. */
    PORT: port.default(8080),
    /** Bind address of both ports. Default 127.0.0.1 (0.0.0.0 in the container image). */
    HOST: z.string().min(1).default('127.0.0.1'),
    /** Operations port: metrics, health, audit API. Default 9090. */
    ADMIN_PORT: port.default(9090),
    /** Bind address of the admin port. Default: HOST, but loopback when HOST is not and no ADMIN_TOKENS_FILE is set. */
    ADMIN_HOST: z.string().min(1).optional(),
    /** Routing and authorisation directory. Default config/directory.yaml. */
    DIRECTORY_FILE: z.string().min(1).default('config/directory.yaml'),
    /** Reload the directory when its file changes (SIGHUP always reloads). Default true. */
    DIRECTORY_WATCH: flag.default(true),
    /** Known GP Connect interaction IDs; unknown IDs in the directory are warned about. */
    INTERACTIONS_FILE: z.string().min(1).default('config/gpconnect-interactions.json'),
    /** Audit spool and embedded ClickHouse files. Default ./data. */
    DATA_DIR: z.string().min(1).default('./data'),
    /** ClickHouse server URL; unset means the embedded engine. */
    CLICKHOUSE_URL: z.url({ protocol: /^https?$/ }).optional(),
    /** closed: refuse traffic (503) when audit cannot be made durable; open: keep proxying. */
    AUDIT_FAILURE_MODE: z.enum(['closed', 'open']).default('closed'),
    /** Write audit records (spool, then ClickHouse). Off only for benchmarks and local trials. Default true. */
    AUDIT_ENABLED: flag.default(true),
    /** The audit spool's strict size cap, bytes. Default 1 GiB. */
    AUDIT_SPOOL_MAX_BYTES: positiveInt.min(65_536).default(1_073_741_824),
    /** Spool segment size, bytes. Default 16 MiB. */
    AUDIT_SEGMENT_BYTES: positiveInt.min(4096).max(268_435_456).default(16_777_216),
    /** Deadline for making an audit record durable; past it: 503 (closed) or a counted drop (open). Default 2000. */
    AUDIT_WRITE_TIMEOUT_MS: positiveInt.max(60_000).default(2_000),
    /**
     * Extra group-commit delay. A group commits as soon as the previous fdatasync returns (records gather
     * while one is under way); this only adds a wait. Default 0, chosen from `BENCH_ONLY=group-commit` (README "Speed").
     */
    AUDIT_GROUP_COMMIT_MS: z.coerce.number().int().min(0).max(100).default(0),
    /** Records per ClickHouse insert, at most. Default 10000. */
    AUDIT_BATCH_MAX_RECORDS: positiveInt.max(1_000_000).default(10_000),
    /** A partial batch waits at most this long for more records. Default 500. */
    AUDIT_BATCH_MAX_AGE_MS: positiveInt.max(60_000).default(500),
    /** Keep audit rows this many days (ClickHouse TTL). Default 3000 (about 8 years). At most 25000: the TTL is a DateTime, which ends in 2106, and a later date wraps into the past. */
    AUDIT_RETENTION_DAYS: positiveInt.max(25_000).default(3_000),
    /** PEM Ed25519 private key that signs the audit trail's seals; unset: one generated once under DATA_DIR (audit-signing-key.pem, mode 0600). */
    AUDIT_SIGNING_KEY_FILE: z.string().min(1).optional(),
    /** PEM Ed25519 public keys of other gateways (sharing this ClickHouse) whose seals verify trusts besides this gateway's own. */
    AUDIT_VERIFY_KEYS_FILE: z.string().min(1).optional(),
    /** Length of a seal period: the trail is sealed at least this often, an empty period too. Default 60000 (at most a minute). */
    AUDIT_SEAL_PERIOD_MS: positiveInt.min(1_000).max(60_000).default(60_000),
    /** Most rows one export (format=csv|ndjson) streams; the export says when it stopped there. Default 1000000. */
    AUDIT_EXPORT_MAX_ROWS: positiveInt.max(100_000_000).default(1_000_000),
    /** Most rows one auditor SQL query (POST /audit/sql) returns. Default 10000. */
    AUDIT_SQL_MAX_ROWS: positiveInt.max(1_000_000).default(10_000),
    /** Execution-time limit of one auditor SQL query. Default 10000. */
    AUDIT_SQL_TIMEOUT_MS: positiveInt.min(100).max(600_000).default(10_000),
    /** Create and migrate the ClickHouse schema at start; false where DBAs own the DDL. Default true. */
    AUDIT_SCHEMA_MANAGEMENT: flag.default(true),
    /** Deadline for one request to a ClickHouse server. Default 10000. */
    CLICKHOUSE_TIMEOUT_MS: positiveInt.max(600_000).default(10_000),
    /** Provider inactivity timeout before 504. Default 30000. */
    UPSTREAM_TIMEOUT_MS: positiveInt.max(3_600_000).default(30_000),
    /** Keep-alive sockets per provider host:port, at most. Default 64. */
    UPSTREAM_MAX_SOCKETS: positiveInt.max(10_000).default(64),
    /** Idle keep-alive sockets to providers are closed after this long. Default 4000. */
    UPSTREAM_IDLE_MS: positiveInt.default(4_000),
    /** Methods a consumer may use. Default GET,HEAD,POST,PUT. */
    ALLOWED_METHODS: methodList.default(['GET', 'HEAD', 'POST', 'PUT']),
    /** Add an RFC 7239 Forwarded header (as a new field line, never changing one). Default true. */
    FORWARDED_HEADER: flag.default(true),
    /** Largest request header block accepted, bytes (over it: 431). Default 16384. */
    MAX_HEADER_BYTES: positiveInt.min(1024).max(1_048_576).default(16_384),
    /** Most header lines in a request (over it: 431 TOO_MANY_HEADERS). Default 100 (Apache's LimitRequestFields). */
    MAX_HEADER_LINES: positiveInt.min(16).max(1_000).default(100),
    /** The request's header block must arrive within this (else 408 REQUEST_TIMEOUT). Default 60000. */
    HEADERS_TIMEOUT_MS: positiveInt.max(600_000).default(60_000),
    /**
     * The consumer's own silence: an upload that sends nothing, or a download it does not
     * read, for this long ends the transaction as `client_timeout` (never `upstream_timeout`). Default 30000.
     */
    CLIENT_IDLE_TIMEOUT_MS: positiveInt.max(3_600_000).default(30_000),
    /** Connections the proxy port holds at once; over it new ones are closed at once. Default: sized from the descriptor limit. */
    MAX_CONNECTIONS: positiveInt.optional(),
    /** A consumer connection (TLS especially: certificates and CRLs change) is closed once idle after this age; 0: no limit. Default 3600000. */
    MAX_CONNECTION_AGE_MS: z.coerce.number().int().min(0).max(86_400_000).default(3_600_000),
    /** Largest request body accepted, bytes (over it: 413). Default 500 MiB: GP Connect document migration reaches ~250 MB. */
    MAX_REQUEST_BODY_BYTES: positiveInt.default(524_288_000),
    /**
     * Proxy worker processes sharing PORT (node:cluster; README "Processes"): a number from 1 to 64,
     * or auto (one per core, os.availableParallelism()). Default 1: one gateway process, no primary.
     */
    WORKERS: z
      .union([z.literal('auto'), z.coerce.number().int().min(1).max(64)])
      .transform((v) => (v === 'auto' ? Math.min(64, Math.max(1, availableParallelism())) : v))
      .default(1),
    /** How long SIGTERM waits for in-flight transactions. Default 10000. */
    SHUTDOWN_GRACE_MS: positiveInt.max(600_000).default(10_000),
    /** Per-request metrics; false only to measure what they cost (npm run bench). Default true. */
    METRICS_ENABLED: flag.default(true),
    /** consumer_asid as a label of the request counter: one series set per consumer system (README: Metrics). Default false. */
    METRICS_CONSUMER_LABEL: flag.default(false),
    /** pino level. Default info. */
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Environment of a consumer whose directory entry names none (and of requests from unknown consumers): live, test, local, ... Default local. */
    ENVIRONMENT: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/, 'lower-case letters, digits and dashes')
      .default('local'),
    /**
     * JWT check (README "JWT check"): off, report (findings recorded and counted, the request forwarded)
     * or enforce (a request whose token breaks a rule is refused with 400 BAD_REQUEST). Default report.
     */
    JWT_CHECK: z.enum(['off', 'report', 'enforce']).default('report'),
    /**
     * Interaction check (README "Interaction check"): the method and the path under the matched endpoint
     * must fit the interaction's entry in INTERACTIONS_FILE. off, report or enforce (400 INTERACTION_MISMATCH). Default enforce.
     */
    INTERACTION_CHECK: z.enum(['off', 'report', 'enforce']).default('enforce'),
    /** Who may use `/_diagnose/<provider URL>` on the proxy port: test (consumers whose environment is test), all, or off. Default test. */
    DIAGNOSE: z.enum(['test', 'all', 'off']).default('test'),
    /** Keep audit rows of test consumers (environment test) this many days (a TTL rule of its own). Default 90. */
    AUDIT_TEST_RETENTION_DAYS: positiveInt.max(25_000).default(90),
    /** TLS on PORT: PEM certificate and key (both or neither). */
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    /** PEM CA bundle: consumers must present a client certificate chaining to it (mutual TLS). */
    TLS_CLIENT_CA_FILE: z.string().min(1).optional(),
    /** PEM CRL checked for client certificates. */
    TLS_CRL_FILE: z.string().min(1).optional(),
    /** OpenSSL cipher list for TLS 1.2 on PORT (TLS 1.3 keeps its own suites). Default: the Spine reference's preference (ssp-reference.md §4). */
    TLS_CIPHERS: z.string().min(1).default('AESGCM+EECDH:AESGCM+EDH:AES256+EECDH:AES256+EDH'),
    /** PEM CA bundle to verify providers (default: Node's bundled public CAs). */
    UPSTREAM_CA_FILE: z.string().min(1).optional(),
    /** The gateway's own client certificate and key, presented to providers. */
    UPSTREAM_CERT_FILE: z.string().min(1).optional(),
    UPSTREAM_KEY_FILE: z.string().min(1).optional(),
    /** Default token bucket per consumer ASID (a directory entry's rate_limit wins); unset: unlimited. */
    RATE_LIMIT_CONSUMER_PER_SECOND: z.coerce.number().positive().optional(),
    RATE_LIMIT_CONSUMER_BURST: positiveInt.optional(),
    /** Default token bucket per provider ASID (a directory entry's rate_limit wins); unset: unlimited. */
    RATE_LIMIT_PROVIDER_PER_SECOND: z.coerce.number().positive().optional(),
    RATE_LIMIT_PROVIDER_BURST: positiveInt.optional(),
    /** YAML list of admin tokens { name, role: metrics | auditor, sha256 }; unset: the admin port is open (local trials). */
    ADMIN_TOKENS_FILE: z.string().min(1).optional(),
    /** /metrics without a token even when ADMIN_TOKENS_FILE is set (a trusted scrape network). Default false. */
    ADMIN_METRICS_OPEN: flag.default(false),
  })
  .strict();

export type Settings = Readonly<z.output<typeof settingsSchema>>;

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, ReadCounter, type HistogramChild } from './hot-metrics';
import { OUTCOMES } from '../transaction';

/** What metrics need to know of a finished transaction (kept free of HTTP and Transaction imports). */
export interface TransactionFacts {
  readonly interactionId: string;
  readonly providerAsid: string;
  readonly consumerAsid: string;
  readonly status: number;
  readonly outcome: string;
  readonly errorCode: string;
  readonly failureReason: string;
  readonly durationMs: number;
  readonly upstreamTtfbMs: number;
  /** Milliseconds from arrival until the request was sent on to the provider; -1 if it never was. */
  readonly forwardedMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** JWT rule codes the token broke (src/check: a bounded set). */
  readonly jwtFindings: readonly string[];
  /** Interaction finding codes (src/check: a bounded set). */
  readonly interactionFindings: readonly string[];
  /** `test` or `live` (the consumer's directory entry), the ENVIRONMENT setting, or '' when the transaction ended before it was known. */
  readonly environment: string;
}

/** The audit pipeline's state, read when scraped (kept free of spool and shipper imports). */
export interface AuditStats {
  /** Records durable in the spool since start (including `interrupted` ones written at recovery). */
  written(): number;
  /**
   * Records never written and never to be: an in-flight record of a request forwarded
   * without it (open mode), or a record given up on after being held in memory. A request
   * refused for want of audit (closed mode) is not a drop: its refusal is recorded.
   */
  dropped(): number;
  /** Records held in memory because the spool cannot take them now (written when it recovers). */
  held(): number;
  /** Records not durable within AUDIT_WRITE_TIMEOUT_MS (they may land later). */
  timedOut(): number;
  shipped(): number;
  deadLettered(): number;
  /** Records in the spool not yet shipped or dead-lettered. */
  pending(): number;
  spoolBytes(): number;
  /** AUDIT_SPOOL_MAX_BYTES: the cap spoolBytes must stay under. */
  spoolMaxBytes(): number;
  /** fdatasync calls the spool has made (group commits: far fewer than records). */
  fsyncs(): number;
  oldestUnshippedAgeSeconds(): number;
  clickhouseUp(): boolean;
  writable(): boolean;
}

/** 1 ms to 60 s: the range service management reads latency in. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** The gateway's own time is mostly well under a millisecond: finer at the bottom. */
const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, ...DURATION_BUCKETS];
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** What may appear as a label value: the directory's parties and interactions (and GP Connect's catalogue). */
export interface KnownLabels {
  interactions: ReadonlySet<string>;
  providers: ReadonlySet<string>;
  consumers: ReadonlySet<string>;
}

export interface GatewayMetricsOptions {
  /** METRICS_CONSUMER_LABEL: add consumer_asid to the request counter (one series set per consumer). */
  consumerLabel: boolean;
  /** ENVIRONMENT: the `environment` label of a transaction that names none (default `local`, the setting's default). */
  defaultEnvironment?: string;
}

/**
 * Every metric the gateway exports, in one registry. Labels stay bounded: a value
 * (interaction, provider or consumer ASID) the directory does not know is counted as
 * "other" (or "none" when absent), so a consumer cannot mint series by sending made-up
 * headers. Label children are cached per label set, so a request costs map look-ups,
 * not label hashing.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private known: KnownLabels = { interactions: new Set(), providers: new Set(), consumers: new Set() };
  private readonly requests: HotCounter;
  private readonly duration = new HotHistogram(
    'spine_gateway_request_duration_seconds',
    'Time from a request arriving to its transaction ending.',
    ['interaction'],
    DURATION_BUCKETS,
    this.registry,
  );
  private readonly upstreamDuration = new HotHistogram(
    'spine_gateway_upstream_duration_seconds',
    'Time from sending a request on to the provider until its response was complete (or failed).',
    ['interaction'],
    DURATION_BUCKETS,
    this.registry,
  );
  private readonly overhead = new HotHistogram(
    'spine_gateway_overhead_seconds',
    "The gateway's own share of a forwarded request: its duration minus the provider's (validation, routing, the durable audit record).",
    [],
    OVERHEAD_BUCKETS,
    this.registry,
  );
  private readonly upstreamTtfb = new HotHistogram(
    'spine_gateway_upstream_ttfb_seconds',
    "Time from a request arriving to the provider's response headers.",
    [],
    DURATION_BUCKETS,
    this.registry,
  );
  private readonly requestBytes = new HotCounter('spine_gateway_request_body_bytes_total', 'Request body bytes relayed to providers.', [], this.registry);
  private readonly responseBytes = new HotCounter(
    'spine_gateway_response_body_bytes_total',
    'Response body bytes relayed to consumers (and refusal bodies).',
    [],
    this.registry,
  );
  private readonly refusals = new Counter({
    name: 'spine_gateway_refusals_total',
    help: 'Requests the gateway answered itself, by stable refusal code.',
    labelNames: ['code'],
    registers: [this.registry],
  });
  private readonly upstreamFailures = new Counter({
    name: 'spine_gateway_upstream_failures_total',
    help: 'Provider exchanges that failed, by network reason (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly jwtFindings = new Counter({
    name: 'spine_gateway_jwt_findings_total',
    help: 'Requests whose token broke a GP Connect JWT rule, by rule code (README "JWT check"); one request can count under several rules.',
    labelNames: ['rule'],
    registers: [this.registry],
  });
  private readonly interactionFindings = new Counter({
    name: 'spine_gateway_interaction_findings_total',
    help: 'Requests whose method or path did not fit their Ssp-InteractionID, by finding code (README "Interaction check").',
    labelNames: ['finding'],
    registers: [this.registry],
  });
  private inFlightNow: () => number = () => 0;
  private readonly inFlight: Gauge = new Gauge({
    name: 'spine_gateway_in_flight_requests',
    help: 'Consumer requests being handled now.',
    registers: [this.registry],
    collect: (): void => this.inFlight.set(this.inFlightNow()),
  });
  /** Consumer connections the proxy port closed at once because MAX_CONNECTIONS were open. */
  readonly connectionsRejected = new Counter({
    name: 'spine_gateway_connections_rejected_total',
    help: 'Consumer connections closed on arrival because the proxy port held MAX_CONNECTIONS already.',
    registers: [this.registry],
  });
  /** Consumer connections the gateway closed itself: reached MAX_CONNECTION_AGE_MS, or a TLS reload. */
  readonly connectionsRetired = new Counter({
    name: 'spine_gateway_connections_retired_total',
    help: 'Consumer connections the gateway closed once idle, by reason (max_age, tls_reload).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly directoryEntries = new Gauge({
    name: 'spine_gateway_directory_entries',
    help: 'Entries in the directory in force, by kind (consumers, providers, endpoints).',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly directoryReloads = new Counter({
    name: 'spine_gateway_directory_reloads_total',
    help: 'Directory loads, by result (success, failure).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly directoryLoadedAt = new Gauge({
    name: 'spine_gateway_directory_last_success_timestamp_seconds',
    help: 'When the directory in force was loaded.',
    registers: [this.registry],
  });

  /** Per interaction label: its duration children. */
  private readonly byInteraction = new Map<string, { duration: HistogramChild; upstream: HistogramChild }>();
  /** Per interaction, provider (and consumer) labels: request counters by status class and outcome. */
  private readonly rows = new Map<string, Array<{ value: number } | undefined>>();
  private readonly ttfbAll = this.upstreamTtfb.child('');
  private readonly overheadAll = this.overhead.child('');
  private readonly requestBytesAll = this.requestBytes.child('');
  private readonly responseBytesAll = this.responseBytes.child('');
  private readonly defaultEnvironment: string;

  constructor(private readonly options: GatewayMetricsOptions = { consumerLabel: false }) {
    this.defaultEnvironment = options.defaultEnvironment ?? 'local';
    const labels = ['interaction', 'provider_asid', ...(options.consumerLabel ? ['consumer_asid'] : []), 'status_class', 'outcome', 'environment'];
    this.requests = new HotCounter('spine_gateway_requests_total', `Consumer requests by ${labels.join(', ').replace(/_/g, ' ')}.`, labels, this.registry);
    collectDefaultMetrics({ register: this.registry, prefix: 'spine_gateway_' });
    // prom-client names three gauges `..._total`, which Prometheus reserves for counters
    // (promtool check metrics says so). `nodejs_active_resources{type}` tells the same.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total'])
      this.registry.removeSingleMetric(`spine_gateway_nodejs_${name}`);
    this.directoryReloads.inc({ result: 'failure' }, 0);
    this.directoryReloads.inc({ result: 'success' }, 0);
    this.insertFailures.inc({ kind: 'transient' }, 0);
    this.insertFailures.inc({ kind: 'permanent' }, 0);
    this.connectionsRetired.inc({ reason: 'max_age' }, 0);
    this.connectionsRetired.inc({ reason: 'tls_reload' }, 0);
  }

  private readonly insertDuration = new Histogram({
    name: 'spine_gateway_audit_insert_duration_seconds',
    help: 'Time for one batch insert into ClickHouse to be acknowledged.',
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly insertBatch = new Histogram({
    name: 'spine_gateway_audit_insert_batch_records',
    help: 'Spool records per acknowledged insert.',
    buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000],
    registers: [this.registry],
  });
  private readonly insertFailures = new Counter({
    name: 'spine_gateway_audit_insert_failures_total',
    help: 'Failed inserts into ClickHouse, by kind (transient: retried; permanent: dead-lettered).',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly spoolCorruptBytes = new Counter({
    name: 'spine_gateway_audit_spool_corrupt_bytes_total',
    help: 'Bytes of torn or corrupt spool tails found at start-up or while shipping, skipped.',
    registers: [this.registry],
  });
  readonly auditUnmatchedFinals = new Counter({
    name: 'spine_gateway_audit_unmatched_finals_total',
    help: 'Final records carrying only the end facts whose begin record was not in the spool (a damaged spool): stored with what they had.',
    registers: [this.registry],
  });

  readonly auditStoreRestarts = new Counter({
    name: 'spine_gateway_audit_store_restarts_total',
    help: 'Restarts of the audit store process after it exited (README: Processes).',
    registers: [this.registry],
  });
  readonly auditStoreUp = new Gauge({
    name: 'spine_gateway_audit_store_up',
    help: 'Whether the audit store process is running (1) or being restarted (0).',
    registers: [this.registry],
  });

  /** Exposes the audit pipeline's counters and gauges, read from `stats` when scraped. */
  watchAudit(stats: AuditStats): void {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect(this: Gauge) {
          this.set(read());
        },
      });
    const counter = (name: string, help: string, read: () => number) => new ReadCounter(name, help, read, this.registry);
    counter('spine_gateway_audit_records_written_total', 'Audit records made durable in the spool since start.', stats.written);
    counter(
      'spine_gateway_audit_records_dropped_total',
      'Audit records never written and never to be: in-flight records of requests forwarded without them (open mode), and held records given up on.',
      stats.dropped,
    );
    counter('spine_gateway_audit_records_timed_out_total', 'Audit records not durable within AUDIT_WRITE_TIMEOUT_MS.', stats.timedOut);
    counter('spine_gateway_audit_records_shipped_total', 'Audit records acknowledged by ClickHouse since start.', stats.shipped);
    counter('spine_gateway_audit_records_dead_lettered_total', 'Audit records sent to dead-letter files since start.', stats.deadLettered);
    counter('spine_gateway_audit_spool_fsyncs_total', 'fdatasync calls by the audit spool (one per group commit, and per finished segment).', stats.fsyncs);
    gauge('spine_gateway_audit_records_pending', 'Audit records in the spool, not yet shipped.', stats.pending);
    gauge('spine_gateway_audit_records_held', 'Audit records held in memory while the spool cannot take them (written when it recovers).', stats.held);
    gauge('spine_gateway_audit_spool_bytes', 'Bytes of spool segments on disk.', stats.spoolBytes);
    gauge('spine_gateway_audit_spool_max_bytes', 'The spool size cap (AUDIT_SPOOL_MAX_BYTES).', stats.spoolMaxBytes);
    gauge('spine_gateway_audit_oldest_unshipped_age_seconds', 'Age of the oldest audit record not yet shipped (0: none).', stats.oldestUnshippedAgeSeconds);
    gauge('spine_gateway_clickhouse_up', 'Whether the last exchange with ClickHouse succeeded (1) or not (0).', () => (stats.clickhouseUp() ? 1 : 0));
    gauge('spine_gateway_audit_writable', "Whether the spool's last write (or probe) succeeded and it takes records now.", () => (stats.writable() ? 1 : 0));
  }

  auditInserted(records: number, seconds: number): void {
    this.insertDuration.observe(seconds);
    this.insertBatch.observe(records);
  }

  auditInsertFailed(kind: 'transient' | 'permanent'): void {
    this.insertFailures.inc({ kind });
  }

  /** The in-flight count is read when scraped, not updated per request. */
  countInFlight(read: () => number): void {
    this.inFlightNow = read;
  }

  /** The label values allowed from now on (set at every directory load). */
  setKnownLabels(known: KnownLabels): void {
    this.known = known;
  }

  observe(tx: TransactionFacts): void {
    const known = this.known;
    const interaction = bounded(known.interactions, tx.interactionId);
    let durations = this.byInteraction.get(interaction);
    if (durations === undefined) {
      durations = { duration: this.duration.child(interaction, interaction), upstream: this.upstreamDuration.child(interaction, interaction) };
      this.byInteraction.set(interaction, durations);
    }
    const provider = bounded(known.providers, tx.providerAsid);
    const consumer = this.options.consumerLabel ? bounded(known.consumers, tx.consumerAsid) : '';
    // At most three values: a directory entry says test or live (its schema allows nothing else), else the handler
    // set ENVIRONMENT; a transaction that ended before either ('' here) is ENVIRONMENT's too.
    const environment = tx.environment === 'test' || tx.environment === 'live' ? tx.environment : this.defaultEnvironment;
    const rowKey = `${interaction}|${provider}|${consumer}|${environment}`;
    let row = this.rows.get(rowKey);
    if (row === undefined) this.rows.set(rowKey, (row = []));
    const statusClass = Math.min(5, Math.max(0, Math.floor(tx.status / 100)));
    const slot = statusClass * OUTCOMES.length + (OUTCOMES as readonly string[]).indexOf(tx.outcome);
    let requests = row[slot];
    if (requests === undefined) {
      const sc = STATUS_CLASSES[statusClass];
      const values = this.options.consumerLabel
        ? [interaction, provider, consumer, sc, tx.outcome, environment]
        : [interaction, provider, sc, tx.outcome, environment];
      requests = row[slot] = this.requests.child(`${rowKey}|${sc}|${tx.outcome}`, ...values);
    }
    requests.value++;
    const seconds = tx.durationMs / 1000;
    this.duration.observe(durations.duration, seconds);
    if (tx.forwardedMs >= 0) {
      const upstream = (tx.durationMs - tx.forwardedMs) / 1000;
      this.upstreamDuration.observe(durations.upstream, upstream);
      this.overhead.observe(this.overheadAll, seconds - upstream);
    }
    if (tx.upstreamTtfbMs >= 0) this.upstreamTtfb.observe(this.ttfbAll, tx.upstreamTtfbMs / 1000);
    if (tx.outcome === 'denied') this.refusals.inc({ code: tx.errorCode });
    if (tx.failureReason !== '' && tx.outcome !== 'denied') this.upstreamFailures.inc({ reason: tx.failureReason });
    // Codes come from src/check's fixed lists, so the label sets stay bounded.
    for (const rule of tx.jwtFindings) this.jwtFindings.inc({ rule });
    for (const finding of tx.interactionFindings) this.interactionFindings.inc({ finding });
    this.requestBytesAll.value += tx.requestBytes;
    this.responseBytesAll.value += tx.responseBytes;
  }
}

/** A label value from a bounded set: the value itself if known, else "other" ("none" if empty). */
function bounded(known: ReadonlySet<string>, value: string): string {
  return known.has(value) ? value : value === '' ? 'none' : 'other';
}

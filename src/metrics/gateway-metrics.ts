import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, ReadCounter, type HistogramChild } from './hot-metrics';

/** What metrics need to know of a finished transaction (kept free of HTTP and Transaction imports). */
export interface TransactionFacts {
  readonly interactionId: string;
  readonly status: number;
  readonly outcome: string;
  readonly errorCode: string;
  readonly failureReason: string;
  readonly durationMs: number;
  readonly upstreamTtfbMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/** The audit pipeline's state, read when scraped (kept free of spool and shipper imports). */
export interface AuditStats {
  /** Records durable in the spool since start (including `interrupted` ones written at recovery). */
  written(): number;
  /** Records never written: spool full, or the disk stalled. */
  dropped(): number;
  /** Records not durable within AUDIT_WRITE_TIMEOUT_MS (they may land later). */
  timedOut(): number;
  shipped(): number;
  deadLettered(): number;
  /** Records in the spool not yet shipped or dead-lettered. */
  pending(): number;
  spoolBytes(): number;
  /** fdatasync calls the spool has made (group commits: far fewer than records). */
  fsyncs(): number;
  oldestUnshippedAgeSeconds(): number;
  clickhouseUp(): boolean;
  writable(): boolean;
}

/** 1 ms to 60 s, as service management asks (issue 4). */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];
const OUTCOMES = ['in_flight', 'forwarded', 'denied', 'upstream_error', 'upstream_timeout', 'client_aborted', 'interrupted'];

/**
 * Every metric the gateway exports, in one registry. Labels stay bounded: an
 * interaction ID that is neither GP Connect's nor in the directory is counted as
 * "other", so a consumer cannot mint series by sending made-up headers.
 * Label children are cached, so a request costs map look-ups, not label hashing.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private knownInteractions: ReadonlySet<string> = new Set();
  private readonly requests = new HotCounter(
    'spine_gateway_requests_total',
    'Consumer requests by interaction, status class and outcome.',
    ['interaction', 'status_class', 'outcome'],
    this.registry,
  );
  private readonly duration = new HotHistogram(
    'spine_gateway_request_duration_seconds',
    'Time from a request arriving to its transaction ending.',
    ['interaction'],
    DURATION_BUCKETS,
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
  private inFlightNow: () => number = () => 0;
  private readonly inFlight: Gauge = new Gauge({
    name: 'spine_gateway_in_flight_requests',
    help: 'Consumer requests being handled now.',
    registers: [this.registry],
    collect: (): void => this.inFlight.set(this.inFlightNow()),
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

  /** Per interaction label: its duration child and its request counters by status class and outcome. */
  private readonly rows = new Map<string, { duration: HistogramChild; requests: Array<{ value: number } | undefined> }>();
  private readonly ttfbAll = this.upstreamTtfb.child('');
  private readonly requestBytesAll = this.requestBytes.child('');
  private readonly responseBytesAll = this.responseBytes.child('');

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'spine_gateway_' });
    this.directoryReloads.inc({ result: 'failure' }, 0);
    this.directoryReloads.inc({ result: 'success' }, 0);
    this.insertFailures.inc({ kind: 'transient' }, 0);
    this.insertFailures.inc({ kind: 'permanent' }, 0);
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

  /** Exposes the audit pipeline's counters and gauges, read from `stats` when scraped. */
  watchAudit(stats: AuditStats): void {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers: [this.registry], collect(this: Gauge) { this.set(read()); } });
    const counter = (name: string, help: string, read: () => number) => new ReadCounter(name, help, read, this.registry);
    counter('spine_gateway_audit_records_written_total', 'Audit records made durable in the spool since start.', stats.written);
    counter('spine_gateway_audit_records_dropped_total', 'Audit records never written (spool full or disk stalled).', stats.dropped);
    counter('spine_gateway_audit_records_timed_out_total', 'Audit records not durable within AUDIT_WRITE_TIMEOUT_MS.', stats.timedOut);
    counter('spine_gateway_audit_records_shipped_total', 'Audit records acknowledged by ClickHouse since start.', stats.shipped);
    counter('spine_gateway_audit_records_dead_lettered_total', 'Audit records sent to dead-letter files since start.', stats.deadLettered);
    counter('spine_gateway_audit_spool_fsyncs_total', 'fdatasync calls by the audit spool (one per group commit, and per finished segment).', stats.fsyncs);
    gauge('spine_gateway_audit_records_pending', 'Audit records in the spool, not yet shipped.', stats.pending);
    gauge('spine_gateway_audit_spool_bytes', 'Bytes of spool segments on disk.', stats.spoolBytes);
    gauge('spine_gateway_audit_oldest_unshipped_age_seconds', 'Age of the oldest audit record not yet shipped (0: none).', stats.oldestUnshippedAgeSeconds);
    gauge('spine_gateway_clickhouse_up', 'Whether the last exchange with ClickHouse succeeded (1) or not (0).', () => (stats.clickhouseUp() ? 1 : 0));
    gauge('spine_gateway_audit_writable', 'Whether audit records can be made durable now.', () => (stats.writable() ? 1 : 0));
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

  /** Interaction IDs that may be labels: GP Connect's catalogue and the directory's. */
  setKnownInteractions(ids: ReadonlySet<string>): void {
    this.knownInteractions = ids;
  }

  private interactionLabel(id: string): string {
    return this.knownInteractions.has(id) ? id : id === '' ? 'none' : 'other';
  }

  observe(tx: TransactionFacts): void {
    const interaction = this.interactionLabel(tx.interactionId);
    let row = this.rows.get(interaction);
    if (row === undefined) {
      row = { duration: this.duration.child(interaction, interaction), requests: [] };
      this.rows.set(interaction, row);
    }
    const statusClass = Math.min(5, Math.max(0, Math.floor(tx.status / 100)));
    const slot = statusClass * OUTCOMES.length + OUTCOMES.indexOf(tx.outcome);
    let requests = row.requests[slot];
    if (requests === undefined) {
      const sc = STATUS_CLASSES[statusClass];
      requests = row.requests[slot] = this.requests.child(`${interaction}|${sc}|${tx.outcome}`, interaction, sc, tx.outcome);
    }
    requests.value++;
    this.duration.observe(row.duration, tx.durationMs / 1000);
    if (tx.upstreamTtfbMs >= 0) this.upstreamTtfb.observe(this.ttfbAll, tx.upstreamTtfbMs / 1000);
    if (tx.outcome === 'denied') this.refusals.inc({ code: tx.errorCode });
    if (tx.failureReason !== '' && tx.outcome !== 'denied') this.upstreamFailures.inc({ reason: tx.failureReason });
    this.requestBytesAll.value += tx.requestBytes;
    this.responseBytesAll.value += tx.responseBytes;
  }
}

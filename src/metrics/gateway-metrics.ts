import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

/** 1 ms to 60 s, as service management asks (issue 4). */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * Every metric the gateway exports, in one registry. Labels stay bounded: an
 * interaction ID that is neither GP Connect's nor in the directory is counted as
 * "other", so a consumer cannot mint series by sending made-up headers.
 * Label children are cached, so a request costs map look-ups, not label hashing.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private knownInteractions: ReadonlySet<string> = new Set();
  private readonly requestChildren = new Map<string, Counter.Internal>();
  private readonly durationChildren = new Map<string, Histogram.Internal<string>>();

  private readonly requests = new Counter({
    name: 'spine_gateway_requests_total',
    help: 'Consumer requests by interaction, status class and outcome.',
    labelNames: ['interaction', 'status_class', 'outcome'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'spine_gateway_request_duration_seconds',
    help: 'Time from a request arriving to its transaction ending.',
    labelNames: ['interaction'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly upstreamTtfb = new Histogram({
    name: 'spine_gateway_upstream_ttfb_seconds',
    help: "Time from a request arriving to the provider's response headers.",
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
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
  private readonly requestBytes = new Counter({
    name: 'spine_gateway_request_body_bytes_total',
    help: 'Request body bytes relayed to providers.',
    registers: [this.registry],
  });
  private readonly responseBytes = new Counter({
    name: 'spine_gateway_response_body_bytes_total',
    help: 'Response body bytes relayed to consumers (and refusal bodies).',
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'spine_gateway_in_flight_requests',
    help: 'Consumer requests being handled now.',
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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'spine_gateway_' });
    this.directoryReloads.inc({ result: 'failure' }, 0);
    this.directoryReloads.inc({ result: 'success' }, 0);
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
    const statusClass = STATUS_CLASSES[Math.floor(tx.status / 100)] ?? '0xx';
    const key = `${interaction}|${statusClass}|${tx.outcome}`;
    let counter = this.requestChildren.get(key);
    if (counter === undefined) {
      counter = this.requests.labels(interaction, statusClass, tx.outcome);
      this.requestChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.durationChildren.get(interaction);
    if (histogram === undefined) {
      histogram = this.duration.labels(interaction);
      this.durationChildren.set(interaction, histogram);
    }
    histogram.observe(tx.durationMs / 1000);
    if (tx.upstreamTtfbMs >= 0) this.upstreamTtfb.observe(tx.upstreamTtfbMs / 1000);
    if (tx.outcome === 'denied') this.refusals.inc({ code: tx.errorCode });
    if (tx.failureReason !== '' && tx.outcome !== 'denied') this.upstreamFailures.inc({ reason: tx.failureReason });
    if (tx.requestBytes > 0) this.requestBytes.inc(tx.requestBytes);
    if (tx.responseBytes > 0) this.responseBytes.inc(tx.responseBytes);
  }
}

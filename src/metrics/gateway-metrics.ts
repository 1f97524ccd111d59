import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, type HistogramChild } from './hot-metrics';

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

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/**
 * How a transaction ended, defined once: the audit search, metrics labels and README
 * take their lists from here. `client_timeout` is the consumer's silence (a stalled
 * upload, or a download it stopped reading), kept apart from the provider's
 * (`upstream_timeout`) so that one party's stall never pages the other's alert.
 * `interrupted` is for records recovered after a crash. `diagnosed` is a `/_diagnose/`
 * request: checked as a real one would be, answered by the gateway, never forwarded.
 */
export const OUTCOMES = [
  'in_flight',
  'forwarded',
  'denied',
  'upstream_error',
  'upstream_timeout',
  'client_aborted',
  'client_timeout',
  'interrupted',
  'diagnosed',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * What the consumer's TLS connection proved, taken once per connection (every request on
 * it shares this object): the client certificate's identity for the audit record, and
 * its host names (CN and DNS SANs, lower case) for the certificate-to-ASID binding.
 * Defined here, beside the transaction that carries it, so this module stays a leaf; tls fills it in.
 */
export interface TlsPeer {
  readonly protocol: string;
  readonly cipher: string;
  /** '' when the consumer presented no certificate. */
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly sha256: string;
  readonly hostNames: readonly string[];
}

/** Audit facts from the consumer's JWT (decoded by audit; the token itself is never kept). */
export interface TransactionClaims {
  readonly requestingOrganization: string;
  readonly practitionerId: string;
  readonly practitionerRole: string;
  readonly device: string;
  readonly reasonForRequest: string;
  readonly requestedScope: string;
}

export const NO_CLAIMS: TransactionClaims = Object.freeze({
  requestingOrganization: '',
  practitionerId: '',
  practitionerRole: '',
  device: '',
  reasonForRequest: '',
  requestedScope: '',
});

/** Finding codes of a check (src/check): none is this shared empty list, so a clean request allocates nothing. */
export const NO_FINDINGS: readonly string[] = Object.freeze([]);

/**
 * One consumer request as the gateway saw it: metadata only, every field set in the
 * constructor so all transactions share one object shape (fastify's Context habit).
 * It is filled in place along the flow and handed to audit, logs and metrics at the end.
 * It never holds a body, a query string, the request path below the endpoint, or the token.
 */
export class Transaction {
  readonly eventId: string = randomUUID();
  /** Epoch milliseconds when the request arrived. */
  readonly receivedAt: number = Date.now();
  /** Monotonic start, for durations. */
  readonly startedAt: number = performance.now();
  completedAt = 0;
  durationMs = 0;

  traceId = '';
  consumerAsid = '';
  providerAsid = '';
  interactionId = '';
  consumerOds = '';
  providerOds = '';
  /** The registered endpoint the request matched (never the consumer's target URL). */
  endpoint = '';
  /** host[:port] of the matched endpoint. */
  targetHost = '';

  status = 0;
  outcome: Outcome = 'in_flight';
  /** Stable refusal or failure code (RefusalCode, or a network error code such as ECONNRESET). */
  errorCode = '';
  /** The network error behind an upstream failure (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...). */
  failureReason = '';

  requestBytes = 0;
  responseBytes = 0;
  /** Milliseconds from arrival until the provider's response headers arrived; -1 if they never did. */
  upstreamTtfbMs = -1;
  /** Milliseconds from arrival until the request was sent on to the provider; -1 if it never was. */
  forwardedMs = -1;
  /** Milliseconds from arrival until a new provider connection was up; 0 on a reused keep-alive socket; -1 if none. */
  upstreamConnectMs = -1;

  /** `test` or `live` from the consumer's directory entry, else the ENVIRONMENT setting; '' until known. */
  environment = '';
  /** JWT rules the token breaks (codes of src/check, never a claim's value). */
  jwtFindings: readonly string[] = NO_FINDINGS;
  /** How the method and path fail to fit the interaction (codes of src/check, never the path). */
  interactionFindings: readonly string[] = NO_FINDINGS;

  claims: TransactionClaims = NO_CLAIMS;
  /** What the consumer's TLS connection proved (shared by its requests); null on plain HTTP. */
  tls: TlsPeer | null = null;

  /**
   * The audit record's request facts, encoded once for the in-flight record and reused by
   * the final one (they do not change once the request is forwarded); '' until then.
   */
  auditRequestFacts = '';
  /**
   * The in-flight record is durable in the spool (its begin succeeded): the final record
   * then carries only what the end adds, and the store merges it into that begin record.
   */
  auditBegun = false;

  constructor(
    readonly method: string,
    readonly clientIp: string,
  ) {}

  /** Milliseconds since arrival. */
  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /** Marks the end; the first call wins, so a late error cannot rewrite a finished transaction. */
  finish(outcome: Outcome, status: number, errorCode = ''): boolean {
    if (this.outcome !== 'in_flight') return false;
    this.outcome = outcome;
    this.status = status;
    this.errorCode = errorCode;
    this.durationMs = this.elapsedMs();
    this.completedAt = this.receivedAt + this.durationMs;
    return true;
  }
}

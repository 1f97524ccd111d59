import type { Outcome } from '../transaction';
import type { RefusalCode } from './refusal-catalogue';

/** What a failed provider exchange means for the consumer and the audit record. */
export interface UpstreamFailure {
  outcome: Extract<Outcome, 'upstream_error' | 'upstream_timeout' | 'client_aborted'>;
  /** Status to answer with when no response byte has been sent yet. */
  status: 502 | 504;
  /** The refusal code it is recorded with (and answered with, when no response byte has been sent yet). */
  code: Extract<RefusalCode, 'ERROR_COMMUNICATING_TO_ENDPOINT' | 'UPSTREAM_TIMEOUT'>;
  /** Stable reason for logs and metrics: the network error's code, never its message. */
  reason: string;
}

/** Failure reason for an error without a well-formed code (a code is kept only if it looks like one: never a message). */
export const UNKNOWN_FAILURE = 'UNKNOWN';
/** Failure reason when the gateway's own inactivity timer gave up on the provider. */
export const TIMED_OUT = 'ETIMEDOUT';
/**
 * Failure reason when the provider's connection closed mid-response without an error
 * (Node reports no code then): to the consumer that is a reset, so it is recorded as one.
 */
export const CLOSED_MID_RESPONSE = 'ECONNRESET';

/**
 * The one place network failures become statuses and outcomes (as HPM's status-code.ts).
 * `timedOut` is set by the proxy's own inactivity timer; everything else the provider
 * did (refused, reset, closed early, bad HTTP, TLS failure) is a 502.
 */
export function classifyUpstreamFailure(err: NodeJS.ErrnoException | undefined, timedOut: boolean): UpstreamFailure {
  if (timedOut) return { outcome: 'upstream_timeout', status: 504, code: 'UPSTREAM_TIMEOUT', reason: TIMED_OUT };
  if (err === undefined) return { outcome: 'upstream_error', status: 502, code: 'ERROR_COMMUNICATING_TO_ENDPOINT', reason: CLOSED_MID_RESPONSE };
  const code = err.code ?? UNKNOWN_FAILURE;
  return { outcome: 'upstream_error', status: 502, code: 'ERROR_COMMUNICATING_TO_ENDPOINT', reason: /^[A-Z0-9_]{1,40}$/.test(code) ? code : UNKNOWN_FAILURE };
}

/**
 * Failure reasons for a provider that answered, but with something the gateway will not
 * relay (each a 502 ERROR_COMMUNICATING_TO_ENDPOINT, its socket closed, never reused):
 * a 1xx other than 100 (101 Switching Protocols, 102, 103: GP Connect has no upgrades and
 * the gateway relays no interim responses), or more 100 Continue than any provider needs
 * to send; a status line or header Node will not write as it is (a control character in
 * the reason phrase, a name or a value); a transfer coding the consumer cannot be told
 * about (`gzip` to an HTTP/1.0 consumer, `chunked` not last, a Transfer-Encoding field
 * with no coding in it).
 */
export const UNEXPECTED_1XX = 'UNEXPECTED_1XX';
export const INVALID_RESPONSE_HEAD = 'INVALID_RESPONSE_HEAD';
export const UNSUPPORTED_TRANSFER_CODING = 'UNSUPPORTED_TRANSFER_CODING';

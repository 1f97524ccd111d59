import type { Outcome } from '../transaction';

/** What a failed provider exchange means for the consumer and the audit record. */
export interface UpstreamFailure {
  outcome: Extract<Outcome, 'upstream_error' | 'upstream_timeout' | 'client_aborted'>;
  /** Status to answer with when no response byte has been sent yet. */
  status: 502 | 504;
  /** Stable reason for logs and metrics: the network error's code, never its message. */
  reason: string;
}

/**
 * The one place network failures become statuses and outcomes (as HPM's status-code.ts).
 * `timedOut` is set by the proxy's own inactivity timer; everything else the provider
 * did (refused, reset, closed early, bad HTTP, TLS failure) is a 502.
 */
export function classifyUpstreamFailure(err: NodeJS.ErrnoException | undefined, timedOut: boolean): UpstreamFailure {
  if (timedOut) return { outcome: 'upstream_timeout', status: 504, reason: 'ETIMEDOUT' };
  const code = err?.code ?? 'UNKNOWN';
  return { outcome: 'upstream_error', status: 502, reason: /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'UNKNOWN' };
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

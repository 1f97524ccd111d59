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

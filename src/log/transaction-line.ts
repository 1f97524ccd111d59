import type { Logger } from 'pino';
import type { Transaction } from '../transaction';

/**
 * One log line per transaction, metadata only: never the target URL (paths carry
 * patient ids), a query string, a body, a header value or the token.
 */
export function logTransaction(log: Logger, tx: Transaction): void {
  const level = tx.outcome === 'forwarded' || tx.outcome === 'denied' ? 'info' : 'warn';
  if (!log.isLevelEnabled(level)) return;
  log[level](
    {
      event_id: tx.eventId,
      trace_id: tx.traceId,
      consumer_asid: tx.consumerAsid,
      provider_asid: tx.providerAsid,
      interaction_id: tx.interactionId,
      method: tx.method,
      endpoint: tx.endpoint,
      status: tx.status,
      outcome: tx.outcome,
      error_code: tx.errorCode || undefined,
      failure_reason: tx.failureReason || undefined,
      duration_ms: Math.round(tx.durationMs * 1000) / 1000,
      upstream_ttfb_ms: tx.upstreamTtfbMs >= 0 ? Math.round(tx.upstreamTtfbMs * 1000) / 1000 : undefined,
      request_bytes: tx.requestBytes,
      response_bytes: tx.responseBytes,
    },
    'transaction',
  );
}

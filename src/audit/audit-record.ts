import type { Transaction } from '../transaction';

/** 1: written before the request is forwarded (in flight); 2: the final record. The store keeps the highest. */
export type RecordVersion = 1 | 2;

/** Facts about this gateway, the same on every record. */
export interface RecordContext {
  readonly instance: string;
  readonly environment: string;
}

const iso = (epochMs: number) => new Date(epochMs).toISOString();
const round3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * The audit record of a transaction: metadata only, one key per ClickHouse column.
 * Never a body, a query string, the target URL (its path carries patient ids; the
 * registered endpoint stands in for it), a header value beyond the Ssp-* ones, or the token.
 */
export function auditRecord(tx: Transaction, version: RecordVersion, context: RecordContext): Record<string, string | number> {
  const final = version === 2;
  return {
    event_id: tx.eventId,
    version,
    trace_id: tx.traceId,
    received_at: iso(tx.receivedAt),
    completed_at: iso(final ? tx.completedAt : tx.receivedAt),
    duration_ms: final ? round3(tx.durationMs) : 0,
    consumer_asid: tx.consumerAsid,
    consumer_ods: tx.consumerOds,
    provider_asid: tx.providerAsid,
    provider_ods: tx.providerOds,
    interaction_id: tx.interactionId,
    method: tx.method,
    target_host: tx.targetHost,
    endpoint: tx.endpoint,
    status: final ? tx.status : 0,
    outcome: final ? tx.outcome : 'in_flight',
    error_code: tx.errorCode,
    failure_reason: tx.failureReason,
    request_bytes: tx.requestBytes,
    response_bytes: tx.responseBytes,
    upstream_ttfb_ms: round3(tx.upstreamTtfbMs),
    client_ip: tx.clientIp,
    jwt_requesting_organization: tx.claims.requestingOrganization,
    jwt_practitioner_id: tx.claims.practitionerId,
    jwt_practitioner_role: tx.claims.practitionerRole,
    jwt_device: tx.claims.device,
    jwt_reason_for_request: tx.claims.reasonForRequest,
    jwt_requested_scope: tx.claims.requestedScope,
    gateway_instance: context.instance,
    environment: context.environment,
  };
}

/** The final record for a transaction whose begin record survived a crash and whose end did not. */
export function interruptedRecord(begin: Record<string, string | number>, recoveredAt: number): Record<string, string | number> {
  return { ...begin, version: 2, outcome: 'interrupted', error_code: 'GATEWAY_STOPPED', completed_at: iso(recoveredAt), status: 0 };
}

import type { Transaction } from '../transaction';

/** 1: written before the request is forwarded (in flight); 2: the final record. The store keeps the highest. */
export type RecordVersion = 1 | 2;

/** Facts about this gateway, the same on every record. */
export interface RecordContext {
  readonly instance: string;
  readonly environment: string;
}

let cachedMinute = -1;
let cachedPrefix = '';
/** Epoch milliseconds as ISO 8601 UTC ("2026-11-21T07:29:13.237Z"), the minute's prefix cached. */
export function isoMillis(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const minute = Math.floor(ms / 60_000);
  if (minute !== cachedMinute) {
    cachedMinute = minute;
    cachedPrefix = new Date(minute * 60_000).toISOString().slice(0, 17);
  }
  const rest = ms - minute * 60_000;
  const sec = Math.floor(rest / 1000);
  const milli = rest % 1000;
  return `${cachedPrefix}${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Tamper-evidence fields of a record not (yet) sealed: the in-flight record always. */
const UNSEALED = ',"seal_chain":"","seal_period":0,"seq":0,"record_hash":""';

const round3 = (n: number) => Math.round(n * 1000) / 1000;
const text = JSON.stringify;

/**
 * The audit record of a transaction as one JSON line (one key per ClickHouse column):
 * metadata only. Never a body, a query string, the target URL (its path carries patient
 * ids; the registered endpoint stands in for it), a header value beyond the Ssp-* ones,
 * or the token.
 *
 * Built by hand, like the log line, and always starting `{"event_id":"<uuid>","version":N,`
 * so the shipper can read a record's identity at fixed offsets and send the line to
 * ClickHouse as it is (no parse, no re-serialisation). Free text is JSON-escaped. The
 * request facts are encoded once per transaction and kept on it for the final record.
 */
export function encodeAuditRecord(tx: Transaction, version: RecordVersion, context: RecordContext): string {
  if (tx.auditRequestFacts === '') tx.auditRequestFacts = requestFacts(tx, context);
  if (version === 1) {
    return (
      `{"event_id":"${tx.eventId}","version":1${tx.auditRequestFacts}` +
      `,"completed_at":"${isoMillis(tx.receivedAt)}","duration_ms":0,"status":0,"outcome":"in_flight","error_code":"","failure_reason":""` +
      `,"request_bytes":0,"response_bytes":0,"upstream_ttfb_ms":-1,"upstream_connect_ms":-1${UNSEALED}}`
    );
  }
  return (
    `{"event_id":"${tx.eventId}","version":2${tx.auditRequestFacts}` +
    `,"completed_at":"${isoMillis(tx.completedAt)}","duration_ms":${round3(tx.durationMs)}` +
    `,"status":${tx.status},"outcome":"${tx.outcome}","error_code":"${tx.errorCode}","failure_reason":"${tx.failureReason}"` +
    `,"request_bytes":${tx.requestBytes},"response_bytes":${tx.responseBytes},"upstream_ttfb_ms":${round3(tx.upstreamTtfbMs)}` +
    `,"upstream_connect_ms":${round3(tx.upstreamConnectMs)}${UNSEALED}}`
  );
}

/** What the request was and who made it: known before forwarding, the same in both records. */
function requestFacts(tx: Transaction, context: RecordContext): string {
  const c = tx.claims;
  return (
    `,"trace_id":"${tx.traceId}","received_at":"${isoMillis(tx.receivedAt)}"` +
    `,"consumer_asid":"${tx.consumerAsid}","consumer_ods":"${tx.consumerOds}","provider_asid":"${tx.providerAsid}","provider_ods":"${tx.providerOds}"` +
    `,"interaction_id":${text(tx.interactionId)},"method":"${tx.method}","target_host":${text(tx.targetHost)},"endpoint":${text(tx.endpoint)}` +
    `,"client_ip":${text(tx.clientIp)}` +
    `,"jwt_requesting_organization":${text(c.requestingOrganization)},"jwt_practitioner_id":${text(c.practitionerId)}` +
    `,"jwt_practitioner_role":${text(c.practitionerRole)},"jwt_device":${text(c.device)}` +
    `,"jwt_reason_for_request":${text(c.reasonForRequest)},"jwt_requested_scope":${text(c.requestedScope)}` +
    `,"gateway_instance":${text(context.instance)},"environment":"${context.environment}"` +
    tlsFacts(tx.tls)
  );
}

const NO_TLS = ',"client_cert_subject":"","client_cert_issuer":"","client_cert_serial":"","client_cert_sha256":"","tls_protocol":"","tls_cipher":""';

/** The consumer connection's TLS facts: the client certificate's identity, protocol and cipher. */
function tlsFacts(peer: Transaction['tls']): string {
  if (peer === null) return NO_TLS;
  return (
    `,"client_cert_subject":${text(peer.subject)},"client_cert_issuer":${text(peer.issuer)},"client_cert_serial":${text(peer.serial)}` +
    `,"client_cert_sha256":${text(peer.sha256)},"tls_protocol":${text(peer.protocol)},"tls_cipher":${text(peer.cipher)}`
  );
}

const ID_START = '{"event_id":"'.length;
const VERSION_AT = ID_START + 36 + '","version":'.length;

/** A record's event id and version, read at their fixed offsets (JSON.parse for any other layout). */
export function recordIdentity(line: Buffer): { id: string; version: number } {
  if (line[VERSION_AT - 1] === 0x3a && line.toString('latin1', 0, ID_START) === '{"event_id":"') {
    return { id: line.toString('latin1', ID_START, ID_START + 36), version: line[VERSION_AT] - 0x30 };
  }
  const parsed = JSON.parse(line.toString('utf8')) as { event_id: string; version: number };
  return { id: String(parsed.event_id), version: Number(parsed.version) };
}

/** The final record for a transaction whose begin record survived a crash and whose end did not. */
export function interruptedRecord(begin: Buffer, recoveredAt: number): string {
  const record = JSON.parse(begin.toString('utf8')) as Record<string, unknown>; // keeps key order: event_id, version first
  return JSON.stringify({ ...record, version: 2, outcome: 'interrupted', error_code: 'GATEWAY_STOPPED', completed_at: isoMillis(recoveredAt), status: 0 });
}

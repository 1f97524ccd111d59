import { hash } from 'node:crypto';
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

/**
 * Where a final record sits in its seal chain (src/seal assigns it): the chain, the seal
 * period's start (epoch ms) and the sequence number. The encoder fills in `hash`, the
 * record's hash over the canonical form (src/seal/canonical.ts), computed as it writes the line.
 */
export interface RecordSeal {
  readonly chain: string;
  readonly period: number;
  readonly seq: number;
  hash: string;
}

/** Tamper-evidence fields of a record not (yet) sealed: the in-flight record always. */
const UNSEALED = ',"seal_chain":"","seal_period":0,"seq":0,"record_hash":""';

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * Free text made well-formed (a lone UTF-16 surrogate, as a JWT claim's `\ud800` escape can
 * produce, becomes U+FFFD) before it is written: JSON.stringify would escape a lone surrogate
 * as `\ud800`, which ClickHouse decodes otherwise than JavaScript does, so the stored value
 * and the hashed one would differ. Well-formed, both sides read the same string.
 */
export function wellFormed(s: string): string {
  const t = s as unknown as { isWellFormed(): boolean; toWellFormed(): string };
  return t.isWellFormed() ? s : t.toWellFormed();
}
const text = (s: string) => JSON.stringify(wellFormed(s));

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
export function encodeAuditRecord(tx: Transaction, version: RecordVersion, context: RecordContext, seal?: RecordSeal | null): string {
  if (tx.auditRequestFacts === '') tx.auditRequestFacts = requestFacts(tx, context);
  if (version === 1) {
    return (
      `{"event_id":"${tx.eventId}","version":1${tx.auditRequestFacts}` +
      `,"completed_at":"${isoMillis(tx.receivedAt)}","duration_ms":0,"status":0,"outcome":"in_flight","error_code":"","failure_reason":""` +
      `,"request_bytes":0,"response_bytes":0,"upstream_ttfb_ms":-1,"upstream_connect_ms":-1${UNSEALED}}`
    );
  }
  const duration = round3(tx.durationMs);
  const ttfb = round3(tx.upstreamTtfbMs);
  const connect = round3(tx.upstreamConnectMs);
  let sealed = UNSEALED;
  if (seal !== undefined && seal !== null) {
    seal.hash = hash('sha256', canonicalFinal(tx, context, seal, duration, ttfb, connect), 'hex');
    sealed = `,"seal_chain":"${seal.chain}","seal_period":${seal.period},"seq":${seal.seq},"record_hash":"${seal.hash}"`;
  }
  return (
    `{"event_id":"${tx.eventId}","version":2${tx.auditRequestFacts}` +
    `,"completed_at":"${isoMillis(tx.completedAt)}","duration_ms":${duration}` +
    `,"status":${tx.status},"outcome":"${tx.outcome}","error_code":"${tx.errorCode}","failure_reason":"${tx.failureReason}"` +
    `,"request_bytes":${tx.requestBytes},"response_bytes":${tx.responseBytes},"upstream_ttfb_ms":${ttfb}` +
    `,"upstream_connect_ms":${connect}${sealed}}`
  );
}

/** UTF-8 byte length of a well-formed string (a loop: cheaper than Buffer.byteLength's native call for short text). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      i++; // a pair: 2 UTF-16 units, 4 bytes
      n += 2;
    } else n += 2;
  }
  return n;
}

/** `<UTF-8 length>:<text>` of one value of the canonical form. */
const part = (s: string) => `${utf8Length(s)}:${s}`;
const free = (s: string) => part(wellFormed(s));
const num = (n: number) => part(String(n));

/**
 * The canonical text (version 1) of the final record this encoder writes, built from the
 * transaction's fields as they are written (no JSON parse): the same values, in the same
 * order, as CANONICAL_V1 of src/seal/canonical.ts reads them from the stored row (times as
 * the epoch milliseconds of the ISO text written, durations rounded as written, free text as
 * written, after wellFormed). test/integration/seal-writer.test.ts holds it to that.
 */
function canonicalFinal(tx: Transaction, context: RecordContext, seal: RecordSeal, duration: number, ttfb: number, connect: number): string {
  const c = tx.claims;
  const t = tx.tls;
  return (
    `36:${tx.eventId}${part(tx.traceId)}${num(Math.floor(tx.receivedAt))}${num(Math.floor(tx.completedAt))}${num(duration)}` +
    `${part(tx.consumerAsid)}${part(tx.consumerOds)}${part(tx.providerAsid)}${part(tx.providerOds)}` +
    `${free(tx.interactionId)}${part(tx.method)}${free(tx.targetHost)}${free(tx.endpoint)}` +
    `${num(tx.status)}${part(tx.outcome)}${part(tx.errorCode)}${part(tx.failureReason)}` +
    `${num(tx.requestBytes)}${num(tx.responseBytes)}${num(ttfb)}${num(connect)}${free(tx.clientIp)}` +
    `${free(c.requestingOrganization)}${free(c.practitionerId)}${free(c.practitionerRole)}${free(c.device)}${free(c.reasonForRequest)}${free(c.requestedScope)}` +
    `${free(context.instance)}${part(context.environment)}` +
    (t === null ? '0:0:0:0:0:0:' : `${free(t.subject)}${free(t.issuer)}${free(t.serial)}${free(t.sha256)}${free(t.protocol)}${free(t.cipher)}`) +
    `${part(seal.chain)}${num(seal.period)}${num(seal.seq)}`
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

/** The final record for a transaction whose begin record survived a crash and whose end did not (unsealed). */
export function interruptedRecord(begin: Buffer, recoveredAt: number): string {
  return JSON.stringify(interruptedFields(begin, recoveredAt));
}

/**
 * interruptedRecord() as an object in the record's key order (event_id, version first; the
 * seal fields last), for the spool to seal (seal fields and record_hash) before writing it.
 */
export function interruptedFields(begin: Buffer, recoveredAt: number): Record<string, string | number> {
  const record = JSON.parse(begin.toString('utf8')) as Record<string, string | number>;
  return { ...record, version: 2, outcome: 'interrupted', error_code: 'GATEWAY_STOPPED', completed_at: isoMillis(recoveredAt), status: 0 };
}

/**
 * The seal fields at the end of a final record as this encoder (or interruptedRecord's
 * JSON.stringify) writes them: chain, period, seq and hash, read without parsing the line.
 * Null when the record is not sealed (seq 0) or not laid out so.
 */
export function recordSealOf(line: Buffer): RecordSeal | null {
  const tail = line.toString('latin1', Math.max(0, line.length - 200));
  const m = SEAL_TAIL.exec(tail);
  if (m === null || m[3] === '0') return null;
  return { chain: m[1], period: Number(m[2]), seq: Number(m[3]), hash: m[4] };
}
const SEAL_TAIL = /"seal_chain":"([0-9a-f-]{36})","seal_period":(\d+),"seq":(\d+),"record_hash":"([0-9a-f]{64})"\}$/;

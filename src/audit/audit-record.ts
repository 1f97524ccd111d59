import { hash } from 'node:crypto';
import type { Transaction } from '../transaction';

/**
 * 1: written before the request is forwarded (in flight); 2: the final record. The store keeps the highest.
 * In the spool only, 3 marks a final record that carries only what the end of the transaction
 * adds (END_FACTS): the store merges it into its begin record and stores that as version 2.
 */
export type RecordVersion = 1 | 2 | 3;

/** A final record of the end's facts only (its begin record, in the spool before it, holds the rest): never stored as such. */
export const END_FACTS = 3;

/** Facts about this gateway, the same on every record. */
export interface RecordContext {
  readonly instance: string;
  /** ENVIRONMENT: the record's environment when the transaction names none (its consumer is unknown). */
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
 *
 * Version 3 (END_FACTS) is the final record of a transaction whose begin record is in the
 * spool: identity, what the end adds (completed_at, duration, status, outcome, error and
 * failure codes, bytes, upstream times) and the seal fields, nothing the begin record
 * already says. Its record_hash is still computed over the whole canonical form (the
 * transaction holds every field); the store merges it into the begin (mergeEndFacts).
 */
export function encodeAuditRecord(tx: Transaction, version: RecordVersion, context: RecordContext, seal?: RecordSeal | null): string {
  // The end facts only (version 3) need no request facts; the hash still covers them (canonicalFinal reads the transaction).
  if (tx.auditRequestFacts === '' && version !== END_FACTS) tx.auditRequestFacts = requestFacts(tx, context);
  if (version === 1) {
    return (
      `{"event_id":"${tx.eventId}","version":1${tx.auditRequestFacts}` +
      `,"completed_at":"${isoMillis(tx.receivedAt)}","duration_ms":0,"status":0,"outcome":"in_flight","error_code":"","failure_reason":""` +
      `,"request_bytes":0,"response_bytes":0,"upstream_ttfb_ms":-1,"upstream_connect_ms":-1${UNSEALED}}`
    );
  }
  // Each number is turned into text once: the line and the canonical form share it.
  const duration = String(round3(tx.durationMs));
  const ttfb = String(round3(tx.upstreamTtfbMs));
  const connect = String(round3(tx.upstreamConnectMs));
  const status = String(tx.status);
  const requestBytes = String(tx.requestBytes);
  const responseBytes = String(tx.responseBytes);
  let sealed = UNSEALED;
  if (seal !== undefined && seal !== null) {
    seal.hash = hash('sha256', canonicalFinal(tx, context, seal, duration, ttfb, connect, status, requestBytes, responseBytes), 'hex');
    sealed = `${sealPrefix(seal)}${seal.seq},"record_hash":"${seal.hash}"`;
  }
  return (
    `{"event_id":"${tx.eventId}",${version === END_FACTS ? '"version":3' : `"version":2${tx.auditRequestFacts}`}` +
    `,"completed_at":"${isoMillis(tx.completedAt)}","duration_ms":${duration}` +
    `,"status":${status},"outcome":"${tx.outcome}","error_code":"${tx.errorCode}","failure_reason":"${tx.failureReason}"` +
    `,"request_bytes":${requestBytes},"response_bytes":${responseBytes},"upstream_ttfb_ms":${ttfb}` +
    `,"upstream_connect_ms":${connect}${sealed}}`
  );
}

/**
 * The canonical text (version 2) of the final record this encoder writes, built from the
 * transaction's fields as they are written (no JSON parse): the same values, in the same
 * order, as CANONICAL_V2 of src/seal/canonical.ts reads them from the stored row (times as
 * the epoch milliseconds of the ISO text written, durations rounded as written, free text
 * as written, after wellFormed, the findings' codes as listed). The record says
 * `"canonical_form":2` (requestFacts). test/integration/seal-writer.test.ts holds the
 * two to that.
 *
 * Fast path first (the sealing budget is 2 µs a transaction): one template, each length
 * taken as the string's `.length`, which is its UTF-8 byte length when all is ASCII; one
 * Buffer.byteLength over the whole text (a native scan) says whether it was. Otherwise
 * (non-ASCII or a lone surrogate somewhere) the exact form is built field by field.
 */
function canonicalFinal(
  tx: Transaction,
  context: RecordContext,
  seal: RecordSeal,
  dur: string,
  tt: string,
  co: string,
  status: string,
  req: string,
  res: string,
): string {
  const c = tx.claims;
  const t = tx.tls;
  const received = String(Math.floor(tx.receivedAt));
  const completed = String(Math.floor(tx.completedAt));
  const seq = String(seal.seq);
  const text =
    `36:${tx.eventId}${tx.traceId.length}:${tx.traceId}${received.length}:${received}${completed.length}:${completed}${dur.length}:${dur}` +
    routePart(tx) +
    `${status.length}:${status}${tx.outcome.length}:${tx.outcome}${tx.errorCode.length}:${tx.errorCode}${tx.failureReason.length}:${tx.failureReason}` +
    `${req.length}:${req}${res.length}:${res}${tt.length}:${tt}${co.length}:${co}${tx.clientIp.length}:${tx.clientIp}` +
    claimsPart(c) +
    `${contextPart(context)}${environmentPart(environmentOf(tx, context))}${t === null ? '0:0:0:0:0:0:' : tlsPart(t)}${sealPart(seal)}${seq.length}:${seq}` +
    `${findingsPart(tx.jwtFindings)}${findingsPart(tx.interactionFindings)}`;
  return Buffer.byteLength(text) === text.length ? text : canonicalExact(tx, context, seal, dur, tt, co);
}

/** The route's facts: the same for every request of a consumer to an endpoint, encoded once per run of them. */
const route = { consumerAsid: '', consumerOds: '', providerAsid: '', providerOds: '', interactionId: '', method: '', targetHost: '', endpoint: '', part: '' };
function routePart(tx: Transaction): string {
  const r = route;
  if (
    tx.consumerAsid !== r.consumerAsid ||
    tx.providerAsid !== r.providerAsid ||
    tx.interactionId !== r.interactionId ||
    tx.endpoint !== r.endpoint ||
    tx.consumerOds !== r.consumerOds ||
    tx.providerOds !== r.providerOds ||
    tx.method !== r.method ||
    tx.targetHost !== r.targetHost
  ) {
    r.consumerAsid = tx.consumerAsid;
    r.consumerOds = tx.consumerOds;
    r.providerAsid = tx.providerAsid;
    r.providerOds = tx.providerOds;
    r.interactionId = tx.interactionId;
    r.method = tx.method;
    r.targetHost = tx.targetHost;
    r.endpoint = tx.endpoint;
    r.part =
      `${tx.consumerAsid.length}:${tx.consumerAsid}${tx.consumerOds.length}:${tx.consumerOds}${tx.providerAsid.length}:${tx.providerAsid}${tx.providerOds.length}:${tx.providerOds}` +
      `${tx.interactionId.length}:${tx.interactionId}${tx.method.length}:${tx.method}${tx.targetHost.length}:${tx.targetHost}${tx.endpoint.length}:${tx.endpoint}`;
  }
  return r.part;
}

/** The token's claims: the same for a practitioner's run of requests, encoded once per run. */
const claims = { org: '', id: '', role: '', device: '', reason: '', scope: '', part: '0:0:0:0:0:0:' };
function claimsPart(c: Transaction['claims']): string {
  const k = claims;
  if (
    c.practitionerId !== k.id ||
    c.requestingOrganization !== k.org ||
    c.practitionerRole !== k.role ||
    c.device !== k.device ||
    c.reasonForRequest !== k.reason ||
    c.requestedScope !== k.scope
  ) {
    k.org = c.requestingOrganization;
    k.id = c.practitionerId;
    k.role = c.practitionerRole;
    k.device = c.device;
    k.reason = c.reasonForRequest;
    k.scope = c.requestedScope;
    k.part =
      `${c.requestingOrganization.length}:${c.requestingOrganization}${c.practitionerId.length}:${c.practitionerId}${c.practitionerRole.length}:${c.practitionerRole}` +
      `${c.device.length}:${c.device}${c.reasonForRequest.length}:${c.reasonForRequest}${c.requestedScope.length}:${c.requestedScope}`;
  }
  return k.part;
}

let lastContext: RecordContext | null = null;
let lastContextPart = '';
/** The instance: the same on every record, encoded once. */
function contextPart(context: RecordContext): string {
  if (context !== lastContext) {
    lastContext = context;
    lastContextPart = `${context.instance.length}:${context.instance}`;
  }
  return lastContextPart;
}

let lastEnvironment = '';
let lastEnvironmentPart = '0:';
/** The consumer's environment: one of a few values, encoded once per run of them. */
function environmentPart(environment: string): string {
  if (environment !== lastEnvironment) {
    lastEnvironment = environment;
    lastEnvironmentPart = `${environment.length}:${environment}`;
  }
  return lastEnvironmentPart;
}

/**
 * A list of finding codes as a canonical value (a `list`: each code as `<length>:<code>`,
 * the whole again length-prefixed); the lengths are UTF-16 lengths, which the fast path's
 * ASCII check vouches for. Most records have none: one constant.
 */
function findingsPart(codes: readonly string[]): string {
  if (codes.length === 0) return '0:';
  let inner = '';
  for (const c of codes) inner += `${c.length}:${c}`;
  return `${inner.length}:${inner}`;
}

let lastPeer: Transaction['tls'] = null;
let lastPeerPart = '';
/** The TLS facts, shared by a connection's requests: encoded once per connection in a row. */
function tlsPart(t: NonNullable<Transaction['tls']>): string {
  if (t !== lastPeer) {
    lastPeer = t;
    lastPeerPart =
      `${t.subject.length}:${t.subject}${t.issuer.length}:${t.issuer}${t.serial.length}:${t.serial}` +
      `${t.sha256.length}:${t.sha256}${t.protocol.length}:${t.protocol}${t.cipher.length}:${t.cipher}`;
  }
  return lastPeerPart;
}

let lastChain = '';
let lastPeriod = -1;
let lastSealPart = '';
let lastSealPrefix = '';
/** Chain and period: the same for every record of a period (canonical text and JSON encoded once). */
function sealPart(seal: RecordSeal): string {
  if (seal.period !== lastPeriod || seal.chain !== lastChain) {
    lastChain = seal.chain;
    lastPeriod = seal.period;
    const p = String(seal.period);
    lastSealPart = `${seal.chain.length}:${seal.chain}${p.length}:${p}`;
    lastSealPrefix = `,"seal_chain":"${seal.chain}","seal_period":${p},"seq":`;
  }
  return lastSealPart;
}
function sealPrefix(seal: RecordSeal): string {
  sealPart(seal);
  return lastSealPrefix;
}

/** UTF-8 byte length of a well-formed string. */
function utf8Length(s: string): number {
  return Buffer.byteLength(s);
}

/** `<UTF-8 length>:<text>` of one value of the canonical form. */
const part = (s: string) => `${utf8Length(s)}:${s}`;
const free = (s: string) => part(wellFormed(s));
const num = (n: number) => part(String(n));
/** A list value: each element as `<UTF-8 length>:<element>`, the whole as one value. */
const list = (codes: readonly string[]) => part(codes.map(part).join(''));

/** The canonical text, each value measured in UTF-8 and free text made well-formed: for records with non-ASCII text. */
function canonicalExact(tx: Transaction, context: RecordContext, seal: RecordSeal, duration: string, ttfb: string, connect: string): string {
  const c = tx.claims;
  const t = tx.tls;
  return (
    `36:${tx.eventId}${part(tx.traceId)}${num(Math.floor(tx.receivedAt))}${num(Math.floor(tx.completedAt))}${part(duration)}` +
    `${part(tx.consumerAsid)}${part(tx.consumerOds)}${part(tx.providerAsid)}${part(tx.providerOds)}` +
    `${free(tx.interactionId)}${part(tx.method)}${free(tx.targetHost)}${free(tx.endpoint)}` +
    `${num(tx.status)}${part(tx.outcome)}${part(tx.errorCode)}${part(tx.failureReason)}` +
    `${num(tx.requestBytes)}${num(tx.responseBytes)}${part(ttfb)}${part(connect)}${free(tx.clientIp)}` +
    `${free(c.requestingOrganization)}${free(c.practitionerId)}${free(c.practitionerRole)}${free(c.device)}${free(c.reasonForRequest)}${free(c.requestedScope)}` +
    `${free(context.instance)}${part(environmentOf(tx, context))}` +
    (t === null ? '0:0:0:0:0:0:' : `${free(t.subject)}${free(t.issuer)}${free(t.serial)}${free(t.sha256)}${free(t.protocol)}${free(t.cipher)}`) +
    `${part(seal.chain)}${num(seal.period)}${num(seal.seq)}${list(tx.jwtFindings)}${list(tx.interactionFindings)}`
  );
}

/**
 * What the request was and who made it: known before forwarding, the same in both records.
 * (The findings too: the checks run before forwarding. `canonical_form` is the form the
 * final record is hashed with, CANONICAL_FORM of src/seal, which this layer cannot import.)
 */
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
    `,"gateway_instance":${text(context.instance)},"environment":"${environmentOf(tx, context)}"` +
    tlsFacts(tx.tls) +
    `,"jwt_findings":${codeList(tx.jwtFindings)},"interaction_findings":${codeList(tx.interactionFindings)},"canonical_form":2`
  );
}

/** The consumer's environment (its directory entry's, else ENVIRONMENT's, set by the handler); the context's when unset. */
function environmentOf(tx: Transaction, context: RecordContext): string {
  return tx.environment === '' ? context.environment : tx.environment;
}

/** A list of finding codes (src/check's fixed vocabularies: plain ASCII, nothing to escape) as a JSON array. */
function codeList(codes: readonly string[]): string {
  return codes.length === 0 ? '[]' : `["${codes.join('","')}"]`;
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

/** A record's fields as JSON.parse reads its line: text, numbers, and the findings' lists of codes. */
export type RecordFields = Record<string, string | number | string[]>;

const VERSION_END = VERSION_AT + 1;
const COMPLETED_KEY = Buffer.from(',"completed_at":"', 'latin1');
/** Where the encoder's end facts have `","duration_ms":` (after completed_at's 24-character ISO text). */
const DURATION_AT = VERSION_END + COMPLETED_KEY.length + 24;
const DURATION_KEY = '","duration_ms":';

/** An end-facts line as encodeAuditRecord writes it: every end column, in the encoder's order, after the identity. */
function encoderEndFacts(end: Buffer): boolean {
  return end.indexOf(COMPLETED_KEY, VERSION_END) === VERSION_END && end.toString('latin1', DURATION_AT, DURATION_AT + DURATION_KEY.length) === DURATION_KEY;
}

/** Whether the line is laid out as the encoder writes it: `{"event_id":"<36>","version":N` at fixed offsets. */
function fixedLayout(line: Buffer): boolean {
  return line.length > VERSION_END && line[VERSION_AT - 1] === 0x3a && line.toString('latin1', 0, ID_START) === '{"event_id":"';
}

/**
 * The complete final record (version 2) of a transaction from its begin record (version 1)
 * and its end-facts record (version 3, END_FACTS): the begin's request facts, then the
 * end's fields, so the line is the one the gateway wrote whole before issue 13 (same keys,
 * same values, same order). Fast path: both as the encoder writes them, spliced as bytes
 * (the begin's facts end where its `,"completed_at":"` starts; JSON escapes every quote
 * inside a string, so that text is never inside a value; the end's line holds every column
 * after it). Otherwise (a recovery's
 * `interrupted` end facts, a begin of an older layout) both are parsed and the end's
 * fields laid over the begin's.
 */
export function mergeEndFacts(begin: Buffer, end: Buffer): Buffer {
  if (fixedLayout(begin) && fixedLayout(end) && begin[VERSION_AT] === 0x31 && encoderEndFacts(end)) {
    const factsEnd = begin.indexOf(COMPLETED_KEY, VERSION_END);
    if (factsEnd > 0) {
      const merged = Buffer.allocUnsafe(factsEnd + end.length - VERSION_END);
      begin.copy(merged, 0, 0, factsEnd);
      merged[VERSION_AT] = 0x32;
      end.copy(merged, factsEnd, VERSION_END);
      return merged;
    }
  }
  const fields = { ...(JSON.parse(begin.toString('utf8')) as RecordFields), ...(JSON.parse(end.toString('utf8')) as RecordFields), version: 2 };
  return Buffer.from(JSON.stringify(fields), 'utf8');
}

/**
 * An end-facts record whose begin record cannot be found, as a final record (version 2)
 * with what it has: the columns it lacks take the table's defaults, but for received_at,
 * taken as completed_at less the duration: the table is partitioned and expired by it, and
 * its default (1970) would have the row deleted by the retention TTL. Never dropped.
 */
export function endFactsAlone(end: Buffer): Buffer {
  const fields = JSON.parse(end.toString('utf8')) as RecordFields;
  const { event_id: id, completed_at: completed, duration_ms: duration } = fields;
  const received = typeof completed === 'string' && fields.received_at === undefined ? Date.parse(completed) - (Number(duration) || 0) : NaN;
  const alone: RecordFields = { event_id: id, version: 2, ...(Number.isFinite(received) ? { received_at: isoMillis(received) } : {}) };
  return Buffer.from(JSON.stringify(Object.assign(alone, fields, { version: 2 })), 'utf8');
}

/**
 * What of a complete final record `full` its begin record does not already say, as an
 * end-facts record (version 3): identity first, then each field whose value differs from
 * the begin's or that the begin lacks (a column added since it was written), in `full`'s
 * order, so the seal fields stay last (recordSealOf reads them there). mergeEndFacts(begin,
 * this) gives back `full`'s fields and values.
 */
export function endFactsOf(full: RecordFields, begin: RecordFields): RecordFields {
  const end: RecordFields = { event_id: full.event_id, version: END_FACTS };
  for (const key of Object.keys(full)) {
    if (key === 'event_id' || key === 'version') continue;
    const v = full[key];
    const was = begin[key];
    if (was === undefined || (Array.isArray(v) ? JSON.stringify(v) !== JSON.stringify(was) : v !== was)) end[key] = v;
  }
  return end;
}

/** The final record for a transaction whose begin record survived a crash and whose end did not (unsealed). */
export function interruptedRecord(begin: Buffer, recoveredAt: number): string {
  return JSON.stringify(interruptedFields(begin, recoveredAt));
}

/**
 * interruptedRecord() as an object in the record's key order (event_id, version first; the
 * seal fields last), for the spool to seal (seal fields and record_hash) before writing it.
 */
export function interruptedFields(begin: Buffer, recoveredAt: number): RecordFields {
  const record = JSON.parse(begin.toString('utf8')) as RecordFields;
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

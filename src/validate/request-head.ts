import { refuse, type Refusal } from '../errors';
import { ASID_PATTERN, INTERACTION_PATTERN, TRACE_ID_PATTERN } from './patterns';

/**
 * The facts the gateway needs from a request's header block, read in one pass over
 * rawHeaders (no lower-cased header object is built). Fixed shape, every field set.
 */
export class RequestHead {
  /** A body follows (Content-Length above zero, or Transfer-Encoding). */
  get hasBody(): boolean {
    return this.contentLength > 0 || this.hasTransferEncoding;
  }

  traceId: string | null = null;
  from: string | null = null;
  to: string | null = null;
  interactionId: string | null = null;
  /** Name of an Ssp-* header, or Authorization, sent more than once (each must be sent at most once). */
  repeated: string | null = null;
  accept: string | undefined = undefined;
  /** -1 when absent. */
  contentLength = -1;
  hasTransferEncoding = false;
  /**
   * Transfer-Encoding was other than one line saying `chunked` (any case): a coding list
   * (`identity, chunked`, `gzip, chunked`) or a second line. Node's parser accepts those when
   * chunked comes last, but providers' parsers differ on them (one reading `identity` as "no
   * coding" would take the chunked body for the next request), so none is relayed.
   */
  otherTransferCoding = false;
  /** Expect: 100-continue was sent: the provider's 100 must be relayed. */
  expectsContinue = false;
  /**
   * An Expect line other than exactly `100-continue` was sent. Node answers those with a
   * bare 417 of its own (no OperationOutcome, no record) unless the handler takes them.
   */
  unmetExpectation = false;
  /**
   * The canonical name of a header the gateway acts on (Ssp-*, framing, Host, Authorization,
   * Connection, Expect, Upgrade) that a field name spells with "_" for "-", or null.
   */
  underscoreAlias: string | null = null;
  /** The Authorization value, for audit's claim decoding only; never stored or logged. */
  authorization: string | null = null;
  /** Value(s) of Connection, whose tokens name extra hop-by-hop headers (RFC 9110 7.6.1). */
  connection: string | null = null;
  /** Host field lines seen (HTTP/1.1 needs exactly one: RFC 9112 3.2). */
  hosts = 0;
  /** An Upgrade field line was sent (GP Connect has no upgrades). */
  upgrade = false;
}

function setOnce(head: RequestHead, key: 'traceId' | 'from' | 'to' | 'interactionId', name: string, value: string): void {
  if (head[key] !== null) head.repeated = name;
  head[key] = value;
}

export function readRequestHead(rawHeaders: readonly string[]): RequestHead {
  const head = new RequestHead();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    if (name.indexOf('_') !== -1 && head.underscoreAlias === null) head.underscoreAlias = underscoreAliasOf(name);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') head.hosts++;
        break;
      case 6: {
        const lower = name.toLowerCase();
        if (lower === 'ssp-to') setOnce(head, 'to', 'Ssp-To', value);
        else if (lower === 'accept') head.accept = value;
        else if (lower === 'expect') {
          if (value.toLowerCase() === '100-continue') head.expectsContinue = true;
          else head.unmetExpectation = true;
        }
        break;
      }
      case 7:
        if (name.toLowerCase() === 'upgrade') head.upgrade = true;
        break;
      case 8:
        if (name.toLowerCase() === 'ssp-from') setOnce(head, 'from', 'Ssp-From', value);
        break;
      case 10:
        if (name.toLowerCase() === 'connection') head.connection = head.connection === null ? value : `${head.connection},${value}`;
        break;
      case 11:
        if (name.toLowerCase() === 'ssp-traceid') setOnce(head, 'traceId', 'Ssp-TraceID', value);
        break;
      case 13:
        if (name.toLowerCase() === 'authorization') {
          // A singleton (RFC 9110 11.6.2): providers take the first of two, so the record and the JWT check could judge another token.
          if (head.authorization !== null) head.repeated ??= 'Authorization';
          head.authorization = value;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') head.contentLength = Number(value);
        break;
      case 17:
        if (name.toLowerCase() === 'ssp-interactionid') setOnce(head, 'interactionId', 'Ssp-InteractionID', value);
        else if (name.toLowerCase() === 'transfer-encoding') {
          if (head.hasTransferEncoding || value.length !== 7 || value.toLowerCase() !== 'chunked') head.otherTransferCoding = true;
          head.hasTransferEncoding = true;
        }
        break;
    }
  }
  return head;
}

/**
 * The four Ssp-* headers, each present once and well formed. Malformed values are set
 * to null (so only well-formed ones reach a record: a malformed header may hold anything),
 * and the refusal names the first missing or malformed header, or null when all are good.
 */
export function checkSspHeaders(head: RequestHead): Refusal | null {
  if (head.traceId !== null && !TRACE_ID_PATTERN.test(head.traceId)) head.traceId = null;
  if (head.from !== null && !ASID_PATTERN.test(head.from)) head.from = null;
  if (head.to !== null && !ASID_PATTERN.test(head.to)) head.to = null;
  if (head.interactionId !== null && !INTERACTION_PATTERN.test(head.interactionId)) head.interactionId = null;
  if (head.repeated !== null) return refuse.invalidHeader(head.repeated, 'not repeated');
  if (head.traceId === null) return refuse.invalidHeader('Ssp-TraceID', 'a new GUID for each request');
  if (head.from === null) return refuse.invalidHeader('Ssp-From', "the consumer system's ASID (digits)");
  if (head.to === null) return refuse.invalidHeader('Ssp-To', "the provider system's ASID from SDS (digits)");
  if (head.interactionId === null) {
    return refuse.invalidHeader('Ssp-InteractionID', 'the interaction URN (urn:nhs:names:services:gpconnect:...)');
  }
  return null;
}

/** Fields the gateway itself acts on: a Connection option naming one would strip it from the forwarded request. */
const NOT_HOP_BY_HOP: ReadonlyMap<string, string> = new Map([
  ['content-length', 'Content-Length'],
  ['transfer-encoding', 'Transfer-Encoding'],
  ['host', 'Host'],
  ['authorization', 'Authorization'],
  ['expect', 'Expect'],
  ['upgrade', 'Upgrade'],
  ['ssp-traceid', 'Ssp-TraceID'],
  ['ssp-from', 'Ssp-From'],
  ['ssp-to', 'Ssp-To'],
  ['ssp-interactionid', 'Ssp-InteractionID'],
]);

/**
 * CGI and WSGI servers (and the frameworks on them) read a field as HTTP_<NAME> with "-"
 * and "_" both turned into "_", so `Ssp_From: 999` next to the checked `Ssp-From` becomes
 * a second Ssp-From at such a provider, and which one it reads is up to its stack; likewise
 * `Content_Length` or `Transfer_Encoding` next to the real framing. The gateway checks and
 * audits the "-" spelling only, so a look-alike of a header it acts on is refused.
 * Returns that header's canonical name, or null for any other name.
 */
function underscoreAliasOf(name: string): string | null {
  const folded = name.toLowerCase().replaceAll('_', '-');
  if (folded === 'connection') return 'Connection';
  const named = NOT_HOP_BY_HOP.get(folded);
  if (named !== undefined) return named;
  return folded.startsWith('ssp-') ? 'Ssp-*' : null;
}

/**
 * The first Connection option (RFC 9110 7.6.1) that names a field which must never be
 * treated as hop-by-hop, by its canonical name (never the consumer's spelling), or null.
 * A proxy drops every field Connection names: naming Content-Length or Transfer-Encoding
 * would forward a body without its framing (request smuggling), naming Host, Authorization,
 * Expect or an Ssp-* header would forward a request other than the one checked.
 * Tokens are read by connectionOptions(), as the forwarder reads them.
 */
export function forbiddenConnectionOption(connection: string): string | null {
  for (const token of connectionOptions(connection) ?? []) {
    const named = NOT_HOP_BY_HOP.get(token);
    if (named !== undefined) return named;
    if (token.startsWith('ssp-')) return 'an Ssp-* header';
  }
  return null;
}

/**
 * The field names a Connection value lists (RFC 9110 7.6.1): split on commas, trimmed,
 * lower-cased, without `close` and `keep-alive` (which are about the connection itself);
 * null when it lists none. The one reading of Connection, for the handler's check and the
 * forwarder alike, so the two can never disagree on what a value names.
 */
export function connectionOptions(connection: string | null): string[] | null {
  if (connection === null) return null;
  // The common values name no field: skip the split.
  if (connection.length <= 10) {
    const lower = connection.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close') return null;
  }
  const names: string[] = [];
  for (const t of connection.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '' && token !== 'close' && token !== 'keep-alive') names.push(token);
  }
  return names.length === 0 ? null : names;
}

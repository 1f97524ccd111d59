/**
 * Hop-by-hop header handling (RFC 9110 section 7.6.1): Connection and the fields it
 * names, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade belong to one
 * connection, so each hop drops and regenerates them; every other field line passes
 * with its name's case, its value and its position unchanged. Proxy-Authenticate and
 * Proxy-Authorization are meant for a proxy, and the gateway is that proxy: they never
 * travel on. Header arrays are Node's flat rawHeaders form [name, value, name, value].
 *
 * A Connection option can never remove a field that frames the message or names its
 * target (Content-Length, Transfer-Encoding, Host): `Connection: Content-Length` on a
 * GET with a body once made Node send the body unframed, and the provider read it as a
 * second, unaudited request. A message always leaves with the framing it
 * arrived with.
 */

import { connectionOptions } from '../validate';

const ALWAYS_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);
// Lengths of the names above: a cheap test before lower-casing a name.
const HOP_LENGTHS = new Set([...ALWAYS_HOP].map((n) => n.length));
/** Fields a Connection option never makes hop-by-hop: they frame the message, or name its target. */
const NEVER_AN_OPTION = new Set(['content-length', 'transfer-encoding', 'host']);

/** The extra hop-by-hop names a Connection header lists (tokens, lower-cased), or null. */
export function connectionTokens(connection: string | null): Set<string> | null {
  const options = connectionOptions(connection);
  if (options === null) return null;
  const tokens = new Set<string>();
  for (const token of options) if (!NEVER_AN_OPTION.has(token)) tokens.add(token);
  return tokens.size === 0 ? null : tokens;
}

function isHopByHop(name: string, extra: Set<string> | null): boolean {
  if (extra === null) return HOP_LENGTHS.has(name.length) && ALWAYS_HOP.has(name.toLowerCase());
  const lower = name.toLowerCase();
  return ALWAYS_HOP.has(lower) || extra.has(lower);
}

/**
 * The consumer's header block as the provider receives it: hop-by-hop fields dropped,
 * Host set to the provider's own authority (the provider only ever sees its own URL),
 * Content-Length as sent, Transfer-Encoding kept when the body is chunked so Node frames
 * it the same way (its codings in lower case: `Chunked` leaves as `chunked`, so no
 * provider can disagree with us about how the body is framed), and an RFC 7239
 * Forwarded field line appended as a new line when asked for.
 */
export function headersForProvider(raw: readonly string[], extraHop: Set<string> | null, hostHeader: string, forwarded: string | null): string[] {
  const out: string[] = [];
  let sawHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (!sawHost) out.push(name, hostHeader);
      sawHost = true;
    } else if (!isHopByHop(name, extraHop)) {
      out.push(name, raw[i + 1]);
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      // Node re-frames the body it relays; this tells it to chunk, as the consumer did.
      out.push(name, canonicalCodings(raw[i + 1]));
    }
  }
  if (!sawHost) out.push('Host', hostHeader);
  if (forwarded !== null) out.push('Forwarded', forwarded);
  return out;
}

/** A transfer-coding list in lower case, one space after each comma: `Chunked` becomes `chunked`. */
function canonicalCodings(value: string): string {
  if (value === 'chunked') return value;
  return value
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '')
    .join(', ');
}

/** What the engine needs to know of a provider's framing, filled in by headersForConsumer. */
export interface ResponseFraming {
  /** The provider's Content-Length, or -1 when it sent none. */
  contentLength: number;
  /** The provider sent a Transfer-Encoding field. */
  transferCoded: boolean;
  /** Its body is framed by chunked coding (the last of its codings). */
  chunked: boolean;
}

/**
 * The provider's header block as the consumer receives it: only hop-by-hop fields
 * dropped, and the response's framing noted in `framing`. A transfer coding other than
 * chunked (`gzip, chunked`) is relayed as it came (in lower case), for Node to chunk the
 * body as the provider did (or not, when chunked is not among the codings: the body
 * then ends with the close), so the consumer learns that the body is coded. Returns
 * null when the response cannot be relayed as it is: codings with `chunked` anywhere
 * but last (framing the gateway and the consumer could read differently), a
 * Transfer-Encoding field with no coding in it, or codings for an HTTP/1.0 consumer,
 * which has no chunked framing.
 */
export function headersForConsumer(raw: readonly string[], framing: ResponseFraming, consumerHttp10: boolean): string[] | null {
  let extra: Set<string> | null = null;
  framing.contentLength = -1;
  framing.transferCoded = false;
  framing.chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      const tokens = connectionTokens(raw[i + 1]);
      if (tokens) extra = extra ? new Set([...extra, ...tokens]) : tokens;
    }
  }
  const out: string[] = [];
  let transferEncodings = 0;
  let coded = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (!isHopByHop(name, extra)) {
      out.push(name, raw[i + 1]);
      // Node's parser has checked the value (digits, one value, not with Transfer-Encoding).
      if (name.length === 14 && name.toLowerCase() === 'content-length') framing.contentLength = Number(raw[i + 1]);
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      transferEncodings++;
      framing.transferCoded = true;
      const codings = canonicalCodings(raw[i + 1]);
      // No coding at all (`Transfer-Encoding: `): Node frames the body by its Content-Length
      // or the close, while relaying the field would tell the consumer `, chunked` beside
      // that Content-Length, two framings on one message.
      if (codings === '') return null;
      // Node chunks the body again itself; codings split over several lines are not relayed.
      if (codings === 'chunked') {
        if (coded) return null;
        framing.chunked = true;
        continue;
      }
      if (transferEncodings > 1) return null;
      coded = true;
      const list = codings.split(', ');
      const chunkedAt = list.indexOf('chunked');
      if (consumerHttp10 || (chunkedAt !== -1 && chunkedAt !== list.length - 1)) return null;
      // Without chunked the body ends with the provider's close, and so it does for the
      // consumer (the engine closes the consumer's connection after it).
      framing.chunked = chunkedAt !== -1;
      out.push(name, codings);
    }
  }
  return out;
}

/** RFC 7239 `for` and `proto` parameters; IPv6 addresses are quoted and bracketed. */
export function forwardedValue(clientIp: string, tls: boolean): string {
  const ip = clientIp.startsWith('::ffff:') ? clientIp.slice(7) : clientIp;
  const node = ip.includes(':') ? `"[${ip}]"` : ip || 'unknown';
  return `for=${node};proto=${tls ? 'https' : 'http'}`;
}

/**
 * Hop-by-hop header handling (RFC 9110 section 7.6.1): Connection and the fields it
 * names, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade belong to one
 * connection, so each hop drops and regenerates them; every other field line passes
 * with its name's case, its value and its position unchanged. Proxy-Authenticate and
 * Proxy-Authorization are meant for a proxy, and the gateway is that proxy: they never
 * travel on. Header arrays are Node's flat rawHeaders form [name, value, name, value].
 */

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

/** The extra hop-by-hop names a Connection header lists (tokens, lower-cased), or null. */
export function connectionTokens(connection: string | null): Set<string> | null {
  if (connection === null) return null;
  // The common values name no extra field: skip the split.
  if (connection.length <= 10) {
    const lower = connection.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close') return null;
  }
  const tokens = new Set<string>();
  for (const t of connection.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '' && token !== 'close' && token !== 'keep-alive') tokens.add(token);
  }
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
 * Transfer-Encoding kept when the body is chunked so Node frames it the same way,
 * and an RFC 7239 Forwarded field line appended as a new line when asked for.
 */
export function headersForProvider(
  raw: readonly string[],
  extraHop: Set<string> | null,
  hostHeader: string,
  forwarded: string | null,
): string[] {
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
      out.push(name, raw[i + 1]);
    }
  }
  if (!sawHost) out.push('Host', hostHeader);
  if (forwarded !== null) out.push('Forwarded', forwarded);
  return out;
}

/** The provider's header block as the consumer receives it: only hop-by-hop fields dropped. */
export function headersForConsumer(raw: readonly string[]): string[] {
  let extra: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      const tokens = connectionTokens(raw[i + 1]);
      if (tokens) extra = extra ? new Set([...extra, ...tokens]) : tokens;
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!isHopByHop(raw[i], extra)) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/** RFC 7239 `for` and `proto` parameters; IPv6 addresses are quoted and bracketed. */
export function forwardedValue(clientIp: string, tls: boolean): string {
  const ip = clientIp.startsWith('::ffff:') ? clientIp.slice(7) : clientIp;
  const node = ip.includes(':') ? `"[${ip}]"` : ip || 'unknown';
  return `for=${node};proto=${tls ? 'https' : 'http'}`;
}

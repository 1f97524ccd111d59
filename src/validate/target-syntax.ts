/**
 * Syntax rules for the provider URL a consumer writes after the gateway's "/".
 * Checked before routing, so that nothing a later parser might read differently
 * (userinfo, dot-segments, escapes that decode to separators, backslashes) gets through.
 * The host itself is not interpreted here: routing compares it, as written, with
 * the registered endpoint, so IP literals and other spellings simply do not match.
 */

const enum Ch {
  Percent = 0x25,
  Slash = 0x2f,
  Question = 0x3f,
  At = 0x40,
  Backslash = 0x5c,
  Hash = 0x23,
}

// RFC 3986 pchar without '%': unreserved / sub-delims / ":" / "@".
const PCHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&\'()*+,;=:@') PCHAR[c.charCodeAt(0)] = 1;
// Host names, IPv4, bracketed IPv6 and a port: anything else in the authority is refused.
const AUTHORITY = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.:[]') AUTHORITY[c.charCodeAt(0)] = 1;

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Escapes whose decoded byte would change how a path is split or read: / \ NUL %. */
function isDangerousEscape(hi: number, lo: number): boolean {
  const byte = (parseInt(String.fromCharCode(hi), 16) << 4) | parseInt(String.fromCharCode(lo), 16);
  return byte === 0x2f || byte === 0x5c || byte === 0x00 || byte === 0x25;
}

function isDotSegment(segment: string): boolean {
  if (segment.length === 0 || segment.length > 6) return false;
  const first = segment.charCodeAt(0);
  if (first !== 0x2e && first !== Ch.Percent) return false; // "." or "%2e" must lead
  const decoded = segment.replace(/%2e/gi, '.');
  return decoded === '.' || decoded === '..';
}

function pathProblem(target: string, start: number, end: number): string | null {
  let segmentStart = start + 1;
  for (let i = start; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === Ch.Slash) {
      if (i > start) {
        const segment = target.slice(segmentStart, i);
        if (segment.length === 0) return 'the path has an empty segment (//)';
        if (isDotSegment(segment)) return 'the path has a dot-segment (. or ..)';
      }
      segmentStart = i + 1;
    } else if (c === Ch.Percent) {
      const hi = target.charCodeAt(i + 1);
      const lo = target.charCodeAt(i + 2);
      if (i + 2 >= end || !isHex(hi) || !isHex(lo)) return 'the path has a % that is not a valid percent-escape';
      if (isDangerousEscape(hi, lo)) return 'the path has an escaped /, \\, NUL or % (%2F, %5C, %00, %25)';
      i += 2;
    } else if (c === Ch.Backslash) {
      return 'the path has a backslash';
    } else if (c === Ch.Hash) {
      return 'the URL has a fragment (#), which is never sent to a server';
    } else if (c >= 128 || PCHAR[c] !== 1) {
      return 'the path has a character that must be percent-encoded';
    }
  }
  if (isDotSegment(target.slice(segmentStart, end))) return 'the path has a dot-segment (. or ..)';
  return null;
}

function queryProblem(target: string, start: number): string | null {
  for (let i = start; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === Ch.Hash) return 'the URL has a fragment (#), which is never sent to a server';
    if (c === Ch.Backslash) return 'the query has a backslash';
    if (c <= 0x20 || c >= 0x7f) return 'the query has a character that must be percent-encoded';
  }
  return null;
}

/**
 * Returns why `target` (the request-target without its leading "/") is not a URL the
 * gateway will forward, or null when its syntax is acceptable.
 */
export function targetSyntaxProblem(target: string): string | null {
  let i: number;
  if (target.startsWith('https://')) i = 8;
  else if (target.startsWith('http://')) i = 7;
  else return 'it must be an absolute URL starting http:// or https:// (lower case) right after the gateway\'s "/"';
  const hostStart = i;
  for (; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === Ch.Slash || c === Ch.Question) break;
    if (c === Ch.At) return 'userinfo (user@host) is not allowed in the URL';
    if (c === Ch.Backslash) return 'the host part has a backslash';
    if (c >= 128 || AUTHORITY[c] !== 1) return 'the host part has a character not allowed in a host name';
  }
  if (i === hostStart) return 'the URL has no host';
  const q = target.indexOf('?', i);
  const pathEnd = q === -1 ? target.length : q;
  return pathProblem(target, i, pathEnd) ?? (q === -1 ? null : queryProblem(target, q + 1));
}

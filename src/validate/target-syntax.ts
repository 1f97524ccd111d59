/**
 * Syntax rules for the provider URL a consumer writes after the gateway's "/".
 * Checked before routing, so that nothing a later parser might read differently
 * (userinfo, fragments, empty segments, unencoded characters) gets through; the path's
 * escapes, dot-segments and backslashes are checked next, by path form (path-form.ts).
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
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@") PCHAR[c.charCodeAt(0)] = 1;
// Host names, IPv4, bracketed IPv6 and a port: anything else in the authority is refused.
const AUTHORITY = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.:[]') AUTHORITY[c.charCodeAt(0)] = 1;

/** %00-%1F and %7F, either case. */
function isEncodedControl(hi: number, lo: number): boolean {
  if (hi === 0x30 || hi === 0x31) return (lo >= 0x30 && lo <= 0x39) || ((lo | 0x20) >= 0x61 && (lo | 0x20) <= 0x66);
  return hi === 0x37 && (lo | 0x20) === 0x66;
}

/**
 * The path's grammar: no fragment, no empty segment, and only RFC 3986 characters. What a
 * provider might resolve differently (escapes and what they decode to, dot-segments in
 * any spelling, backslashes, control characters) is path form's (path-form.ts), which
 * runs next and answers AMBIGUOUS_PATH: those characters are let through here.
 */
function pathProblem(target: string, start: number, end: number): string | null {
  for (let i = start; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === Ch.Slash) {
      if (i > start && target.charCodeAt(i - 1) === Ch.Slash) return 'the path has an empty segment (//)';
    } else if (c === Ch.Hash) {
      return 'the URL has a fragment (#), which is never sent to a server';
    } else if (c === Ch.Percent || c === Ch.Backslash || c < 0x20 || c === 0x7f) {
      continue; // path form's
    } else if (c >= 128 || PCHAR[c] !== 1) {
      return 'the path has a character that must be percent-encoded';
    }
  }
  return null;
}

function queryProblem(target: string, start: number): string | null {
  for (let i = start; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === Ch.Hash) return 'the URL has a fragment (#), which is never sent to a server';
    if (c === Ch.Backslash) return 'the query has a backslash';
    if (c <= 0x20 || c >= 0x7f) return 'the query has a character that must be percent-encoded';
    // Escapes in the query are the provider's business, except a control character (CR LF, NUL, TAB ...).
    if (c === Ch.Percent && i + 2 < target.length && isEncodedControl(target.charCodeAt(i + 1), target.charCodeAt(i + 2))) {
      return 'the query has a percent-encoded control character (%00-%1F or %7F)';
    }
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

/**
 * Path forms a provider may resolve differently from the gateway.
 *
 * Routing compares the consumer's URL, as written, with the registered endpoint. That is
 * only safe if the provider reads the path the same way. Servlet containers and
 * frameworks do not: Tomcat and Spring strip `;parameters` from each segment before they
 * resolve dot-segments (`fhir/..;/structured` is `structured`), some decode %2F or %5C
 * into separators, some decode overlong UTF-8 (%c0%ae is "."), Windows servers trim
 * trailing dots and spaces, NFKC-normalising stacks read a fullwidth dot as ".", and
 * Windows "best-fit" conversion reads U+2215 as "/" and the yen sign as "\". So the gateway
 * refuses every such form, and any non-ASCII character in the path, instead of guessing
 * how the provider reads it.
 *
 * Runs after the target syntax check (target-syntax.ts, which owns the scheme, the
 * authority, fragments, empty segments and characters that must be encoded) and before
 * routing, over the whole path: a legitimate GP Connect path never holds any of these
 * forms, so there is nothing to gain by exempting the part above the endpoint. The query
 * is not a path: only a `_method` parameter is refused there (target syntax refuses
 * control characters there).
 *
 * Every answer names the form, never the path: it ends up in an OperationOutcome.
 */

const PERCENT = 0x25;
const SLASH = 0x2f;
const SEMICOLON = 0x3b;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const SPACE = 0x20;
const PLUS = 0x2b;
const COLON = 0x3a;
const QUESTION = 0x3f;
const HASH = 0x23;
const AMPERSAND = 0x26;
const EQUALS = 0x3d;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export const PATH_FORMS = {
  dotSegment: 'a dot-segment (. or .. in some spelling: encoded, overlong, fullwidth, with ;parameters, a :suffix, an encoded ? or #, or dots and spaces)',
  encodedSeparator: 'an encoded /, \\ or ; (%2F, %5C or %3B), or an encoded ? or # (%3F or %23)',
  doubleEncoded: 'a double-encoded character (%25)',
  backslash: 'a backslash',
  control: 'a control character (%00-%1F or %7F)',
  badEscape: 'a % that is not a valid percent-escape (two hex digits)',
  badUtf8: 'overlong or invalid UTF-8 in its percent-escapes',
  compatibility: 'a compatibility character that normalises to a separator (fullwidth or similar / \\ ; % ? #)',
  nonAscii: 'a non-ASCII character (percent-encoded UTF-8), which some servers map to / \\ . or ; (Windows best-fit, NFKC, trimming)',
  parameters: 'a ; (path parameters, which Tomcat and Spring strip from the segment)',
  methodParameter: "a _method query parameter, which some servers read as the request's method",
  overrideHeader: "a header that some servers read as the request's URL, host or method instead of the request line and Host",
  formBody: "a form body (Content-Type application/x-www-form-urlencoded or multipart/*), whose _method field some servers read as the request's method",
} as const;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** The bytes `segment` percent-decodes to (escapes already checked valid). */
function decodeBytes(path: string, start: number, end: number): Buffer {
  const bytes = Buffer.allocUnsafe(end - start);
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) {
      bytes[n++] = (hexValue(path.charCodeAt(i + 1)) << 4) | hexValue(path.charCodeAt(i + 2));
      i += 2;
    } else {
      bytes[n++] = c;
    }
  }
  return bytes.subarray(0, n);
}

/**
 * True when `name` (a decoded segment) reads as "." or ".." on some server. The name ends
 * at the first ";" (Tomcat and Spring strip path parameters), ":" (an NTFS stream suffix,
 * "..::$INDEX_ALLOCATION"), or a decoded "?" or "#" (a proxy in front of the provider that
 * decodes %3F or %23, as nginx does with rewrite, cuts the path there). What is left is a
 * dot name when it holds a dot and nothing but dots, spaces and "+" (a form-decoder's
 * space): Windows trims trailing dots and spaces repeatedly, so "...", "..%20" and ".. ."
 * are all "..", and stacks that trim leading spaces make " .." one too.
 */
function isDotName(name: string): boolean {
  let dots = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === DOT) dots++;
    else if (c === SEMICOLON || c === COLON || c === QUESTION || c === HASH) break;
    else if (c !== SPACE && c !== PLUS) return false;
  }
  return dots > 0;
}

/** Characters whose compatibility form (NFKC) would change how a path is split or decoded. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
const STRUCTURAL_AFTER_NFKC = /[/\\;%?#\x00-\x1f\x7f]/;

/**
 * One segment, path[start, end): returns the form it holds, or null. The common case
 * (letters, digits, -, $, ., no escapes) costs one scan and no allocation.
 */
function segmentProblem(path: string, start: number, end: number): string | null {
  let escapes = false;
  let high = false;
  let semicolon = -1;
  for (let i = start; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) {
      const hi = i + 2 < end ? hexValue(path.charCodeAt(i + 1)) : -1;
      const lo = hi === -1 ? -1 : hexValue(path.charCodeAt(i + 2));
      if (lo === -1) return PATH_FORMS.badEscape;
      const byte = (hi << 4) | lo;
      if (byte < 0x20 || byte === 0x7f) return PATH_FORMS.control;
      // A decoded ? or # moves the rest into the query or a fragment for a proxy that decodes (nginx with rewrite).
      if (byte === SLASH || byte === BACKSLASH || byte === SEMICOLON || byte === QUESTION || byte === HASH) return PATH_FORMS.encodedSeparator;
      if (byte === PERCENT) return PATH_FORMS.doubleEncoded;
      if (byte >= 0x80) high = true;
      escapes = true;
      i += 2;
    } else if (c < 0x20 || c === 0x7f) {
      return PATH_FORMS.control; // Node's parser refuses these first; kept for any other front end
    } else if (c === BACKSLASH) {
      return PATH_FORMS.backslash;
    } else if (c === SEMICOLON) {
      if (semicolon === -1) semicolon = i;
    } else if (c >= 0x80) {
      high = true; // never from Node's parser (it refuses raw non-ASCII), but decoded as UTF-8 below if it comes
    }
  }
  if (high) {
    let decoded: string;
    try {
      decoded = utf8.decode(decodeBytes(path, start, end)); // fatal: overlongs, surrogates, stray bytes throw
    } catch {
      return PATH_FORMS.badUtf8;
    }
    const normalised = decoded.normalize('NFKC');
    // The two checks below only make the diagnostics precise (a fullwidth dot, a dot leader
    // or small full stop is "." after NFKC; a fullwidth solidus is "/"): every non-ASCII
    // character is refused anyway. No GP Connect path holds one (FHIR ids are
    // [A-Za-z0-9-.]), and no list of look-alikes is complete: Windows best-fit maps U+2215
    // and U+2044 to "/" and the yen and won signs to "\" (none changes under NFKC), and
    // .NET and Python trim U+0085, U+2028 and U+1680 from around "..".
    if (isDotName(normalised)) return PATH_FORMS.dotSegment;
    if (normalised !== decoded && STRUCTURAL_AFTER_NFKC.test(normalised) && !STRUCTURAL_AFTER_NFKC.test(decoded)) return PATH_FORMS.compatibility;
    return PATH_FORMS.nonAscii;
  }
  const first = path.charCodeAt(start);
  // Only a name that starts with ".", "+" or an escape can decode to a dot name.
  if ((first === DOT || first === PLUS || (escapes && first === PERCENT)) && isDotName(decodeBytes(path, start, end).toString('latin1'))) {
    return PATH_FORMS.dotSegment;
  }
  if (semicolon !== -1) return PATH_FORMS.parameters;
  return null;
}

/**
 * Returns the ambiguous form the path of `target` holds (the request-target without its
 * leading "/", already past target syntax: "http(s)://authority/path?query"), or null.
 */
export function pathFormProblem(target: string): string | null {
  const authority = target.indexOf('//') + 2;
  let i = authority;
  while (i < target.length && target.charCodeAt(i) !== SLASH && target.charCodeAt(i) !== QUESTION) i++;
  const q = target.indexOf('?', i);
  const end = q === -1 ? target.length : q;
  let segmentStart = i + 1;
  for (let j = i + 1; j <= end; j++) {
    if (j === end || target.charCodeAt(j) === SLASH) {
      if (j > segmentStart) {
        const problem = segmentProblem(target, segmentStart, j);
        if (problem !== null) return problem;
      }
      segmentStart = j + 1;
    }
  }
  return q === -1 ? null : methodParameterProblem(target, q + 1);
}

/**
 * A `_method` parameter in the query, target[start..]: Symfony (http_method_override),
 * Laravel and Express's method-override (set to read the query) take it as the request's
 * method, so a consumer accredited for one interaction could run another. Names are read
 * as PHP's parse_str reads them: percent-decoded, "+" as a space, leading spaces dropped,
 * " ", "." and a leading "[" turned into "_", "[...]" (an array) cut off; any case.
 * Only a name holding "%" or "method" is decoded, so a plain FHIR query costs one scan.
 */
function methodParameterProblem(target: string, start: number): string | null {
  let nameStart = start;
  let inName = true;
  for (let i = start; i <= target.length; i++) {
    const c = i === target.length ? AMPERSAND : target.charCodeAt(i);
    if (c === AMPERSAND || c === SEMICOLON) {
      if (inName && isMethodName(target, nameStart, i)) return PATH_FORMS.methodParameter;
      nameStart = i + 1;
      inName = true;
    } else if (c === EQUALS && inName) {
      if (isMethodName(target, nameStart, i)) return PATH_FORMS.methodParameter;
      inName = false;
    }
  }
  return null;
}

const METHOD = 'method';

function isMethodName(target: string, start: number, end: number): boolean {
  if (end - start < 7) return false; // "_method" is 7 characters, and no spelling of it is shorter
  let escaped = false;
  for (let i = start; i < end && !escaped; i++) escaped = target.charCodeAt(i) === PERCENT;
  if (!escaped) {
    // No escape (the common case, no allocation): "+"s, then "_", "." or "[", then "method", then the end or "[".
    let i = start;
    while (i < end && target.charCodeAt(i) === PLUS) i++;
    const c = target.charCodeAt(i);
    if (c !== 0x5f && c !== DOT && c !== 0x5b) return false;
    if (end - i - 1 < 6) return false;
    for (let k = 0; k < 6; k++) if ((target.charCodeAt(i + 1 + k) | 0x20) !== METHOD.charCodeAt(k)) return false;
    return i + 7 === end || target.charCodeAt(i + 7) === 0x5b;
  }
  const raw = target.slice(start, end);
  let name = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    const hi = c === PERCENT && i + 2 < raw.length ? hexValue(raw.charCodeAt(i + 1)) : -1;
    const lo = hi === -1 ? -1 : hexValue(raw.charCodeAt(i + 2));
    if (lo !== -1) {
      name += String.fromCharCode((hi << 4) | lo);
      i += 2;
    } else {
      name += c === PLUS ? ' ' : raw[i];
    }
  }
  name = name.toLowerCase().replace(/^ +/, '');
  if (name.startsWith('[')) name = `_${name.slice(1)}`;
  const bracket = name.indexOf('[');
  if (bracket !== -1) name = name.slice(0, bracket);
  return name.replace(/[ .]/g, '_') === '_method';
}

/**
 * Request headers that some provider stacks read as the request's URL or method in place
 * of the request line, by their lower-case names and the spelling a refusal shows: IIS's
 * URL Rewrite and ISAPI_Rewrite, older Symfony and Zend/Laminas take the path from
 * X-Original-URL or X-Rewrite-URL; apps behind nginx, Traefik or Envoy trust
 * X-Original-URI, X-Forwarded-Uri, X-Forwarded-Path or X-Envoy-Original-Path; Spring's
 * ForwardedHeaderFilter and ASP.NET's path base take X-Forwarded-Prefix; Laravel,
 * Express's method-override and ASP.NET Web API take X-HTTP-Method-Override and its
 * kin. The host too: the gateway sets Host to the registered endpoint's, but Spring,
 * ASP.NET, Express ("trust proxy"), Django and Symfony take it from X-Forwarded-Host (or
 * X-Host, X-Original-Host, X-Forwarded-Server) when told to trust a proxy, and a supplier
 * serving many practices by host name routes by it. With one, a consumer accredited for
 * one endpoint could have the provider serve another while the request line passes every
 * check. No GP Connect consumer sends them. (Forwarded: host= is checked below.)
 */
const OVERRIDE_HEADERS = new Map<string, string>(
  [
    'X-Original-URL',
    'X-Rewrite-URL',
    'X-Original-URI',
    'X-Forwarded-Uri',
    'X-Forwarded-Path',
    'X-Forwarded-Prefix',
    'X-Envoy-Original-Path',
    'X-HTTP-Method-Override',
    'X-HTTP-Method',
    'X-Method-Override',
    'X-Forwarded-Host',
    'X-Host',
    'X-Original-Host',
    'X-Forwarded-Server',
  ].map((n) => [n.toLowerCase(), n]),
);
/**
 * A host= parameter in a Forwarded element (RFC 7239), leniently: any case, spaces
 * around "=". Those who read Forwarded take the first element, which is the consumer's,
 * not the one the gateway appends; for= and proto= (an egress proxy's) pass.
 */
const FORWARDED_HOST = /(?:^|[;,])\s*host\s*=/i;
const OVERRIDE_LENGTHS = new Set([...OVERRIDE_HEADERS.keys()].map((n) => n.length));
/**
 * A Content-Type whose body some stacks read as form fields, a `_method` among them, taken
 * as the request's method: Rack::MethodOverride (Rails, Sinatra) for urlencoded and
 * multipart bodies, Symfony and Laravel (http_method_override) through PHP's form
 * parsing, ASP.NET Core's UseHttpMethodOverride with a FormFieldName. The gateway streams
 * bodies unread, so it refuses the media type: a GP Connect body is a FHIR resource
 * (application/fhir+json or +xml), never a form. A prefix, in any case: PHP and Rack
 * match loosely, and a type that only starts like a form is no FHIR body either.
 */
const FORM_MEDIA_TYPE = /^[ \t]*(?:application\/x-www-form-urlencoded|multipart\/)/i;

/**
 * The first header in `rawHeaders` (Node's flat [name, value, ...]) that overrides the
 * path, host or method on some provider (a form Content-Type too: its body may), as the form a refusal names (the header's name, never
 * its value), or null. An "X-" and length test keeps the common headers from being lower-cased.
 */
export function overrideHeaderProblem(rawHeaders: readonly string[]): string | null {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (name.length === 9 && name.toLowerCase() === 'forwarded' && FORWARDED_HOST.test(rawHeaders[i + 1]))
      return `${PATH_FORMS.overrideHeader} (Forwarded: host=)`;
    if (name.length === 12 && FORM_MEDIA_TYPE.test(rawHeaders[i + 1]) && name.toLowerCase() === 'content-type') return PATH_FORMS.formBody;
    // Every other name starts "X-": Authorization, Ssp-To or Accept share a length with one.
    if ((name.charCodeAt(0) | 0x20) !== 0x78 || name.charCodeAt(1) !== 0x2d || !OVERRIDE_LENGTHS.has(name.length)) continue;
    const shown = OVERRIDE_HEADERS.get(name.toLowerCase());
    if (shown !== undefined) return `${PATH_FORMS.overrideHeader} (${shown})`;
  }
  return null;
}

import { isUtf8 } from 'node:buffer';
import { NO_CLAIMS, NO_FINDINGS, type TransactionClaims } from '../transaction';
import { JWT_RULE_CODES, type JwtRule } from './finding-codes';
import { auditClaimsOf } from './jwt-claims';
import { NO_SCOPE, audienceFits, payloadFindings, resourceScopeOf, scopeFits } from './jwt-rules';

/**
 * The JWT check (README "JWT check"): the GP Connect 1.x rules of ssp-reference.md
 * section 8, judged from the one decode of the token that also gives the audit's claims.
 * The token itself is never kept: what leaves here is the audit claims (short, printable,
 * the record's jwt_* columns) and rule codes.
 */
export interface JwtInspection {
  /** The audit facts (as decodeJwtClaims gives them). */
  readonly claims: TransactionClaims;
  /** Rules broken that need no route (everything but aud and scope-for-interaction). */
  readonly findings: readonly JwtRule[];
}

/**
 * Above this an Authorization value is not decoded (JWT_TOO_LARGE). A realistic GP Connect
 * token is about 1.5 KiB; 8 KiB leaves room for long names while bounding what JSON.parse
 * is handed (a hostile 8 KiB of nested brackets parses in well under a millisecond).
 */
export const MAX_AUTHORIZATION_CHARS = 8192;

/** The header every GP Connect consumer sends, in both key orders: compared, not decoded. */
const ALG_NONE_HEADERS = new Set([
  Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url'),
  Buffer.from('{"typ":"JWT","alg":"none"}').toString('base64url'),
]);

/** The inspection, with what only the routed rules need kept out of sight (#private: not enumerable, not serialised, not logged). */
class Inspection implements JwtInspection {
  readonly #aud: string | null;
  readonly #scope: number;
  constructor(
    readonly claims: TransactionClaims,
    readonly findings: readonly JwtRule[],
    aud: string | null,
    scope: number,
  ) {
    this.#aud = aud;
    this.#scope = scope;
  }

  static routed(inspection: JwtInspection, endpointUrl: string, requiredScope: string | null): readonly JwtRule[] {
    if (!(inspection instanceof Inspection)) return inspection.findings;
    const aud = inspection.#aud;
    const scope = inspection.#scope;
    const audWrong = aud !== null && !audienceFits(aud, endpointUrl);
    const scopeWrong = requiredScope !== null && scope !== NO_SCOPE && !scopeFits(scope, requiredScope);
    if (!audWrong && !scopeWrong) return inspection.findings;
    const out: JwtRule[] = [...inspection.findings];
    if (audWrong) out.push('JWT_AUD_NOT_ENDPOINT');
    if (scopeWrong) out.push('JWT_SCOPE_NOT_FOR_INTERACTION');
    return out.sort(byRuleOrder);
  }
}

const RANK = new Map<JwtRule, number>(JWT_RULE_CODES.map((code, i) => [code, i]));
const byRuleOrder = (a: JwtRule, b: JwtRule) => RANK.get(a)! - RANK.get(b)!;

/** An inspection that breaks one rule before anything could be decoded: shared, frozen, no claims. */
const undecoded = (rule: JwtRule): JwtInspection => Object.freeze(new Inspection(NO_CLAIMS, Object.freeze([rule]), null, NO_SCOPE));
const MISSING = undecoded('JWT_MISSING');
const NOT_BEARER = undecoded('JWT_NOT_BEARER');
const TOO_LARGE = undecoded('JWT_TOO_LARGE');
const MALFORMED = undecoded('JWT_MALFORMED');

/** One segment's bytes, decoded into a buffer reused by every call (the check is synchronous): no allocation per token; the next token overwrites them. */
const scratch = Buffer.allocUnsafe(MAX_AUTHORIZATION_CHARS);

/**
 * A base64url segment (RFC 7515 2: no padding, no other characters) decoded as a UTF-8 JSON
 * object, or null. Node's decoder skips characters outside the alphabet and takes "+" and
 * "/" too, so the bytes are encoded back and compared: only the canonical spelling of those
 * bytes passes (cheaper than a character scan by regular expression).
 */
function jsonObjectOf(segment: string): Record<string, unknown> | null {
  if (segment.length === 0) return null;
  const n = scratch.write(segment, 0, 'base64url');
  if (scratch.toString('base64url', 0, n) !== segment || !isUtf8(scratch.subarray(0, n))) return null;
  let value: unknown;
  try {
    value = JSON.parse(scratch.toString('utf8', 0, n));
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** Decodes the Authorization header once and judges the rules that need no route. */
export function inspectJwt(authorization: string | null, nowMs: number): JwtInspection {
  if (authorization === null) return MISSING;
  if (authorization.length > MAX_AUTHORIZATION_CHARS) return TOO_LARGE;
  // RFC 6750 2.1: "Bearer" 1*SP token; the scheme is case-insensitive (RFC 9110 11.1).
  if (authorization.charCodeAt(6) !== 0x20 || !(authorization.startsWith('Bearer') || authorization.slice(0, 6).toLowerCase() === 'bearer')) {
    return authorization.length === 6 && authorization.toLowerCase() === 'bearer' ? MALFORMED : NOT_BEARER;
  }
  let start = 7;
  while (authorization.charCodeAt(start) === 0x20) start++;
  const dot1 = authorization.indexOf('.', start);
  const dot2 = dot1 === -1 ? -1 : authorization.indexOf('.', dot1 + 1);
  if (dot2 === -1) return MALFORMED;
  const signature = authorization.slice(dot2 + 1);
  if (signature.length > 0 && !/^[A-Za-z0-9_-]+$/.test(signature)) return MALFORMED; // a fourth part, a space, padding...

  const payload = jsonObjectOf(authorization.slice(dot1 + 1, dot2));
  if (payload === null) return MALFORMED;
  const headerSegment = authorization.slice(start, dot1);
  let alg: unknown = 'none';
  if (!ALG_NONE_HEADERS.has(headerSegment)) {
    const header = jsonObjectOf(headerSegment);
    // The payload still says who asked: the record keeps that, as it always has.
    if (header === null) return new Inspection(auditClaimsOf(payload), MALFORMED.findings, null, NO_SCOPE);
    alg = header.alg;
  }

  const found: JwtRule[] = [];
  if (alg !== 'none') found.push('JWT_ALG_NOT_NONE');
  if (signature.length > 0) found.push('JWT_SIGNATURE_NOT_EMPTY');
  payloadFindings(payload, nowMs, found);
  const aud = typeof payload.aud === 'string' && payload.aud.length > 0 ? payload.aud : null;
  return new Inspection(
    auditClaimsOf(payload),
    found.length === 0 ? (NO_FINDINGS as readonly JwtRule[]) : found,
    aud,
    resourceScopeOf(payload.requested_scope),
  );
}

/**
 * The inspection's findings plus the rules that need the route: aud against the matched
 * endpoint, requested_scope against the interaction's (`requiredScope`: its INTERACTIONS_FILE
 * requestedScope, null when the interaction is not in the file). Returns `inspection.findings`
 * itself when nothing is added. A token with no aud, or no valid scope, is judged by its own
 * rule only (JWT_AUD_MISSING, JWT_SCOPE_INVALID).
 */
export function routedJwtFindings(inspection: JwtInspection, endpointUrl: string, requiredScope: string | null): readonly JwtRule[] {
  return Inspection.routed(inspection, endpointUrl, requiredScope);
}

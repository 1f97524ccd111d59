import { NO_CLAIMS, NO_FINDINGS, type TransactionClaims } from '../transaction';
import type { JwtRule } from './finding-codes';

/**
 * The JWT check (README "JWT check"): the GP Connect 1.x rules of ssp-reference.md
 * section 8, judged from the one decode of the token that also gives the audit's claims.
 * SKELETON: the lead's shared vocabulary; the JWT-check work fills it in.
 */
export interface JwtInspection {
  /** The audit facts (as decodeJwtClaims gives them). */
  readonly claims: TransactionClaims;
  /** Rules broken that need no route (everything but aud and scope-for-interaction). */
  readonly findings: readonly JwtRule[];
}

/** Decodes the Authorization header once and judges the rules that need no route. */
export function inspectJwt(authorization: string | null, nowMs: number): JwtInspection {
  void authorization;
  void nowMs;
  return { claims: NO_CLAIMS, findings: NO_FINDINGS as readonly JwtRule[] };
}

/**
 * The inspection's findings plus the rules that need the route: aud against the matched
 * endpoint, requested_scope against the interaction's (`requiredScope`: its INTERACTIONS_FILE
 * requestedScope, null when the interaction is not in the file). Returns `inspection.findings`
 * itself when nothing is added.
 */
export function routedJwtFindings(inspection: JwtInspection, endpointUrl: string, requiredScope: string | null): readonly JwtRule[] {
  void endpointUrl;
  void requiredScope;
  return inspection.findings;
}

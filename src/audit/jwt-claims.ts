import { inspectJwt } from '../check';
import type { TransactionClaims } from '../transaction';

/**
 * The audit facts of an `Authorization: Bearer <jwt>` value (src/check/jwt-claims.ts says
 * which). GP Connect tokens are unsigned (alg none) and checked by providers and, as
 * findings, by the JWT check; a missing or malformed token yields NO_CLAIMS (the request is
 * still passed on unless JWT_CHECK=enforce). The proxy handler takes the claims from its
 * one inspectJwt per request; this is for callers that want the claims alone.
 */
export function decodeJwtClaims(authorization: string | null): TransactionClaims {
  return inspectJwt(authorization, Date.now()).claims;
}

import { NO_CLAIMS, type TransactionClaims } from '../transaction';

/**
 * The audit facts a GP Connect 1.x token carries (ssp-reference.md section 8): who asked
 * (practitioner SDS user id and role profile), for which organisation (ODS code), from
 * which system (device), why (reason_for_request) and for what (requested_scope).
 * The token is never kept: only these short, validated values leave this function.
 * 0.x tokens' `requested_record` (which named the patient) is never read.
 */

const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
const SDS_USER_SYSTEM = 'https://fhir.nhs.uk/Id/sds-user-id';
const SDS_ROLE_SYSTEM = 'https://fhir.nhs.uk/Id/sds-role-profile-id';

/** Short printable text only: anything else in a claim is not recorded. */
function clean(value: unknown, max = 128): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) return '';
  return /^[\x20-\x7e]+$/.test(value) ? value : '';
}

interface Identifier {
  system?: unknown;
  value?: unknown;
}

function identifierValue(resource: unknown, system: string): string {
  const ids = (resource as { identifier?: unknown } | undefined)?.identifier;
  if (!Array.isArray(ids)) return '';
  const found = (ids as Identifier[]).find((i) => i && i.system === system);
  return found ? clean(found.value) : '';
}

/**
 * Decodes the claims from an `Authorization: Bearer <jwt>` value. GP Connect tokens are
 * unsigned (alg none) and checked by providers, not the proxy; a missing or malformed
 * token yields NO_CLAIMS (the request is still passed on: the provider will refuse it).
 */
export function decodeJwtClaims(authorization: string | null): TransactionClaims {
  if (authorization === null || authorization.length > 16_384) return NO_CLAIMS;
  const m = /^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/.exec(authorization);
  if (m === null) return NO_CLAIMS;
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return NO_CLAIMS;
  }
  if (payload === null || typeof payload !== 'object') return NO_CLAIMS;
  const device = payload.requesting_device as { model?: unknown; version?: unknown } | undefined;
  const model = clean(device?.model, 64);
  const version = clean(device?.version, 32);
  return {
    requestingOrganization: identifierValue(payload.requesting_organization, ODS_SYSTEM),
    practitionerId: identifierValue(payload.requesting_practitioner, SDS_USER_SYSTEM) || clean(payload.sub),
    practitionerRole: identifierValue(payload.requesting_practitioner, SDS_ROLE_SYSTEM),
    device: model && version ? `${model} ${version}` : model,
    reasonForRequest: clean(payload.reason_for_request, 32),
    requestedScope: clean(payload.requested_scope, 128),
  };
}

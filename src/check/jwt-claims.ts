import type { TransactionClaims } from '../transaction';

/**
 * The audit facts a GP Connect 1.x token carries (ssp-reference.md section 8): who asked
 * (practitioner SDS user id and role profile), for which organisation (ODS code), from
 * which system (device), why (reason_for_request) and for what (requested_scope).
 * Only these short, printable values leave the token; 0.x tokens' `requested_record`
 * (which named the patient) is never read.
 */

export const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const SDS_USER_SYSTEM = 'https://fhir.nhs.uk/Id/sds-user-id';
export const SDS_ROLE_SYSTEM = 'https://fhir.nhs.uk/Id/sds-role-profile-id';

const PRINTABLE = /^[\x20-\x7e]+$/;

/** Short printable text only: anything else in a claim is not recorded. */
function clean(value: unknown, max = 128): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) return '';
  return PRINTABLE.test(value) ? value : '';
}

/** `resource.identifier[]`'s first entry with this system, or undefined (any JSON value may stand where an object is expected). */
export function identifierWith(resource: unknown, system: string): { value?: unknown } | undefined {
  if (typeof resource !== 'object' || resource === null) return undefined;
  const ids = (resource as { identifier?: unknown }).identifier;
  if (!Array.isArray(ids)) return undefined;
  for (const id of ids as unknown[]) {
    if (typeof id === 'object' && id !== null && (id as { system?: unknown }).system === system) return id as { value?: unknown };
  }
  return undefined;
}

function identifierValue(resource: unknown, system: string): string {
  return clean(identifierWith(resource, system)?.value);
}

function field(resource: unknown, name: string): unknown {
  return typeof resource === 'object' && resource !== null ? (resource as Record<string, unknown>)[name] : undefined;
}

/** The audit claims of a decoded payload (a JSON object), with the values decodeJwtClaims has always recorded. */
export function auditClaimsOf(payload: Record<string, unknown>): TransactionClaims {
  const device = payload.requesting_device;
  const model = clean(field(device, 'model'), 64);
  const version = clean(field(device, 'version'), 32);
  return {
    requestingOrganization: identifierValue(payload.requesting_organization, ODS_SYSTEM),
    practitionerId: identifierValue(payload.requesting_practitioner, SDS_USER_SYSTEM) || clean(payload.sub),
    practitionerRole: identifierValue(payload.requesting_practitioner, SDS_ROLE_SYSTEM),
    device: model && version ? `${model} ${version}` : model,
    reasonForRequest: clean(payload.reason_for_request, 32),
    requestedScope: clean(payload.requested_scope, 128),
  };
}

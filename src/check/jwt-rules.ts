import type { JwtRule } from './finding-codes';
import { ODS_SYSTEM, SDS_ROLE_SYSTEM, SDS_USER_SYSTEM, identifierWith } from './jwt-claims';

/**
 * The GP Connect 1.x payload rules (ssp-reference.md section 8; README "JWT check"), judged
 * on the decoded payload. Each rule reads only its own claims and says nothing about a
 * claim another rule owns, so a token that breaks one rule gives exactly that rule's code.
 * A claim may hold any JSON value: every read checks the type first, and nothing here
 * copies a key, so `__proto__` and friends stay inert data.
 */

/** How far ahead of the gateway's clock `iat` may be: the GP Connect provider test suite's tolerance (README "JWT check"). */
export const IAT_TOLERANCE_SECONDS = 200;
/** GP Connect: `exp` = `iat` + 300 exactly. */
export const LIFETIME_SECONDS = 300;

/** The resource scopes of `requested_scope`; the index stands for the scope after decoding (no claim value is kept). */
export const RESOURCE_SCOPES = ['patient/*.read', 'patient/*.write', 'organization/*.read', 'organization/*.write'] as const;
const CONFIDENTIALITY_SCOPES = ['conf/N', 'conf/R'];
/** No parsable resource scope. */
export const NO_SCOPE = -1;

const REASONS = ['directcare', 'migration'];

const nonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
/** NumericDate as GP Connect writes it: whole seconds (RFC 7519 allows fractions; GP Connect says integer). */
const wholeSeconds = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * The resource scope's index in RESOURCE_SCOPES, or NO_SCOPE: exactly one resource scope,
 * optionally with one confidentiality scope (either order), separated by one space
 * (RFC 6749 3.3). Without conf/*, GP Connect reads conf/N.
 */
export function resourceScopeOf(scope: unknown): number {
  if (typeof scope !== 'string' || scope.length > 64) return NO_SCOPE;
  const space = scope.indexOf(' ');
  if (space === -1) return RESOURCE_SCOPES.indexOf(scope as (typeof RESOURCE_SCOPES)[number]);
  if (scope.indexOf(' ', space + 1) !== -1) return NO_SCOPE;
  const first = scope.slice(0, space);
  const second = scope.slice(space + 1);
  if (CONFIDENTIALITY_SCOPES.includes(second)) return RESOURCE_SCOPES.indexOf(first as (typeof RESOURCE_SCOPES)[number]);
  if (CONFIDENTIALITY_SCOPES.includes(first)) return RESOURCE_SCOPES.indexOf(second as (typeof RESOURCE_SCOPES)[number]);
  return NO_SCOPE;
}

/**
 * Whether the token's resource scope is the one the interaction's `requestedScope`
 * (INTERACTIONS_FILE, e.g. "patient/*.read (plus conf/N or conf/R)") leads with. Exact:
 * as in SMART on FHIR, .write is a permission of its own and does not include .read, and
 * a provider authorising by scope refuses a read under a write scope.
 */
export function scopeFits(scopeIndex: number, requiredScope: string): boolean {
  const granted = RESOURCE_SCOPES[scopeIndex];
  return requiredScope.startsWith(granted) && (requiredScope.length === granted.length || requiredScope.charCodeAt(granted.length) === 0x20);
}

/**
 * `aud` against the matched endpoint's URL (the directory's: lower-case scheme and host, no
 * default port, no trailing "/"). Equal as strings once one trailing "/" is dropped; else
 * read as a URL, so that only a difference a provider would see counts (host case, an
 * explicit default port). A query or fragment never matches.
 */
export function audienceFits(aud: string, endpointUrl: string): boolean {
  const bare = aud.charCodeAt(aud.length - 1) === 0x2f ? aud.slice(0, -1) : aud;
  if (bare === endpointUrl) return true;
  if (aud.length > 2048) return false;
  let url: URL;
  try {
    url = new URL(aud);
  } catch {
    return false;
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '' || aud.includes('?') || aud.includes('#')) return false;
  const path = url.pathname === '/' ? '' : url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  return `${url.protocol}//${url.host}${path}` === endpointUrl;
}

/** Appends to `out` the codes of the payload rules `payload` breaks, in JWT_RULES order. */
export function payloadFindings(payload: Record<string, unknown>, nowMs: number, out: JwtRule[]): void {
  const practitioner = payload.requesting_practitioner;
  if (!nonEmptyString(payload.iss)) out.push('JWT_ISS_MISSING');
  // sub names the practitioner; when requesting_practitioner has no id, only its own rule is broken.
  const practitionerId = isObject(practitioner) ? practitioner.id : undefined;
  if (!nonEmptyString(payload.sub) || (nonEmptyString(practitionerId) && payload.sub !== practitionerId)) out.push('JWT_SUB_MISMATCH');
  if (!nonEmptyString(payload.aud)) out.push('JWT_AUD_MISSING');

  const now = nowMs / 1000;
  const { iat, exp } = payload;
  const iatValid = wholeSeconds(iat);
  if (!iatValid || iat > now + IAT_TOLERANCE_SECONDS) out.push('JWT_IAT_INVALID');
  // With no valid iat, exp cannot be compared with it: the iat rule alone is broken.
  if (!wholeSeconds(exp) || (iatValid && exp !== iat + LIFETIME_SECONDS)) out.push('JWT_EXP_NOT_IAT_PLUS_300');
  // RFC 7519 4.1.4: the token is good until, not at, exp. No leeway beyond the iat tolerance (a token lives 300 s).
  else if (exp <= now) out.push('JWT_EXPIRED');

  if (!REASONS.includes(payload.reason_for_request as string)) out.push('JWT_REASON_INVALID');
  if (resourceScopeOf(payload.requested_scope) === NO_SCOPE) out.push('JWT_SCOPE_INVALID');
  if (!validDevice(payload.requesting_device)) out.push('JWT_DEVICE_INVALID');
  if (!validOrganization(payload.requesting_organization)) out.push('JWT_ORGANIZATION_INVALID');
  if (!validPractitioner(practitioner)) out.push('JWT_PRACTITIONER_INVALID');
}

function hasIdentifierValue(resource: Record<string, unknown>, system: string): boolean {
  return nonEmptyString(identifierWith(resource, system)?.value);
}

/** A minimal STU3 Device: an identifier with a system and a value, model and version. */
function validDevice(device: unknown): boolean {
  if (!isObject(device) || device.resourceType !== 'Device' || !nonEmptyString(device.model) || !nonEmptyString(device.version)) return false;
  const ids = device.identifier;
  if (!Array.isArray(ids)) return false;
  for (const id of ids as unknown[]) if (isObject(id) && nonEmptyString(id.system) && nonEmptyString(id.value)) return true;
  return false;
}

/** A minimal Organization: a name and the ODS code of the organisation the request comes from. */
function validOrganization(organization: unknown): boolean {
  return (
    isObject(organization) && organization.resourceType === 'Organization' && nonEmptyString(organization.name) && hasIdentifierValue(organization, ODS_SYSTEM)
  );
}

/**
 * A minimal Practitioner: an id, a name (STU3: a list of HumanName) and the SDS user and
 * role profile identifiers (UNK when the user has no smartcard, which the provider suite accepts).
 */
function validPractitioner(practitioner: unknown): boolean {
  if (!isObject(practitioner) || practitioner.resourceType !== 'Practitioner' || !nonEmptyString(practitioner.id)) return false;
  const names = practitioner.name;
  if (!Array.isArray(names) || names.length === 0 || !(names as unknown[]).every(isObject)) return false;
  return hasIdentifierValue(practitioner, SDS_USER_SYSTEM) && hasIdentifierValue(practitioner, SDS_ROLE_SYSTEM);
}

/**
 * The checks' finding codes, defined once: audit records (`jwt_findings`,
 * `interaction_findings`), the metrics' label values, diagnose and the README's tables
 * all take them from here. Codes are stable: a code is never renamed or reused; a new
 * rule gets a new code. Each summary says what was expected, never what was sent.
 */

/**
 * GP Connect 1.x JWT rules (ssp-reference.md section 8, README "JWT check"): code → what the
 * rule asks. The order is the order findings are listed in (records, refusals, diagnose).
 */
export const JWT_RULES = {
  JWT_MISSING: 'an Authorization header',
  JWT_NOT_BEARER: 'the Authorization header in the form "Bearer <token>"',
  JWT_TOO_LARGE: 'a token of at most 8 KiB (a GP Connect token is about 1.5 KiB; a larger one is not decoded)',
  JWT_MALFORMED: 'a JWT: three base64url parts (no padding), the first two JSON objects in UTF-8',
  JWT_ALG_NOT_NONE: 'an unsigned token: header alg "none"',
  JWT_SIGNATURE_NOT_EMPTY: 'an empty signature (the token ends with ".")',
  JWT_ISS_MISSING: "iss: the consumer system's endpoint URL (a non-empty string)",
  JWT_SUB_MISMATCH: 'sub: a string equal to requesting_practitioner.id',
  JWT_AUD_MISSING: "aud: the provider's service root (a non-empty string)",
  JWT_AUD_NOT_ENDPOINT: 'aud equal to the matched endpoint URL (the service root from SDS; a trailing "/" does not matter)',
  JWT_IAT_INVALID: "iat: whole Unix seconds, at most 200 s ahead of the gateway's clock",
  JWT_EXP_NOT_IAT_PLUS_300: 'exp: whole Unix seconds, equal to iat + 300',
  JWT_EXPIRED: "exp still ahead of the gateway's clock (a new token for each request)",
  JWT_REASON_INVALID: 'reason_for_request "directcare" or "migration"',
  JWT_SCOPE_INVALID:
    'requested_scope: one of patient/*.read, patient/*.write, organization/*.read, organization/*.write, optionally with conf/N or conf/R (one space between)',
  JWT_SCOPE_NOT_FOR_INTERACTION: "requested_scope naming the interaction's scope (INTERACTIONS_FILE requestedScope; write does not include read)",
  JWT_DEVICE_INVALID: 'requesting_device: a Device with an identifier (system and value), model and version',
  JWT_ORGANIZATION_INVALID: 'requesting_organization: an Organization with a name and an ODS code identifier (https://fhir.nhs.uk/Id/ods-organization-code)',
  JWT_PRACTITIONER_INVALID:
    'requesting_practitioner: a Practitioner with an id, a name and identifiers https://fhir.nhs.uk/Id/sds-user-id and https://fhir.nhs.uk/Id/sds-role-profile-id',
} as const;
export type JwtRule = keyof typeof JWT_RULES;
export const JWT_RULE_CODES = Object.keys(JWT_RULES) as JwtRule[];

/** How a request can fail to fit its interaction (INTERACTIONS_FILE): code → what was expected. */
export const INTERACTION_FINDINGS = {
  INTERACTION_METHOD: "the interaction's method",
  INTERACTION_PATH: "a path under the endpoint of the interaction's form",
  INTERACTION_QUERY: "a query string of the interaction's form (only for interactions that define one)",
  INTERACTION_NOT_IN_CATALOGUE: 'an interaction listed in INTERACTIONS_FILE (else its form cannot be checked)',
} as const;
export type InteractionFinding = keyof typeof INTERACTION_FINDINGS;
export const INTERACTION_FINDING_CODES = Object.keys(INTERACTION_FINDINGS) as InteractionFinding[];

/** off: not checked; report: findings recorded and counted, the request forwarded; enforce: refused with 400. */
export const CHECK_MODES = ['off', 'report', 'enforce'] as const;
export type CheckMode = (typeof CHECK_MODES)[number];

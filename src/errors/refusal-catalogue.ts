/**
 * Every refusal the gateway can give, with its HTTP status and FHIR issue type.
 * ENDPOINT_VARIES_FROM_TARGETURL, the three 403s, the 405 and ERROR_COMMUNICATING_TO_ENDPOINT
 * mimic the real Spine Secure Proxy's answers, so consumer systems that already handle
 * Spine's errors handle ours; the rest are ours.
 * The README's refusal table is checked against this catalogue by a test.
 */
export const refusalCatalogue = {
  MISSING_OR_INVALID_HEADER: { status: 400, issue: 'invalid' },
  ENDPOINT_VARIES_FROM_TARGETURL: { status: 400, issue: 'invalid' },
  ASID_CHECK_FAILED_MESSAGESENDER: { status: 403, issue: 'forbidden' },
  PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER: { status: 403, issue: 'forbidden' },
  FOT_CHECK_FAILED: { status: 403, issue: 'forbidden' },
  METHOD_NOT_ALLOWED: { status: 405, issue: 'forbidden' },
  MALFORMED_HTTP_REQUEST: { status: 400, issue: 'invalid' },
  REQUEST_BODY_TOO_LARGE: { status: 413, issue: 'too-costly' },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, issue: 'too-costly' },
  ERROR_COMMUNICATING_TO_ENDPOINT: { status: 502, issue: 'transient' },
  UPSTREAM_TIMEOUT: { status: 504, issue: 'timeout' },
  AUDIT_UNAVAILABLE: { status: 503, issue: 'transient' },
  RATE_LIMITED: { status: 429, issue: 'throttled' },
  CONNECTION_OPTION_NOT_ALLOWED: { status: 400, issue: 'invalid' },
  UPGRADE_NOT_SUPPORTED: { status: 400, issue: 'not-supported' },
  AMBIGUOUS_PATH: { status: 400, issue: 'invalid' },
  TOO_MANY_HEADERS: { status: 431, issue: 'too-costly' },
  REQUEST_TIMEOUT: { status: 408, issue: 'timeout' },
  CLIENT_TIMEOUT: { status: 408, issue: 'timeout' },
  BAD_REQUEST: { status: 400, issue: 'invalid' },
  INTERACTION_MISMATCH: { status: 400, issue: 'invalid' },
  DIAGNOSE_NOT_AVAILABLE: { status: 404, issue: 'not-found' },
  DIAGNOSE_NOT_ALLOWED: { status: 403, issue: 'forbidden' },
} as const;

export type RefusalCode = keyof typeof refusalCatalogue;

/** The coding system the live SSP uses in its own OperationOutcomes (spec 1.2.6). */
export const SSP_CODING_SYSTEM = 'http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0';
/** The SSP's 405 body uses this system, severity fatal and display "405: Method Not Allowed". */
export const SSP_405_SYSTEM = 'https://fhir.nhs.uk/StructureDefinition/spine-operationoutcome-1';

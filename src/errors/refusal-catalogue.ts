/**
 * Every refusal the gateway can give, with its HTTP status and FHIR issue type.
 * The first six mimic the real Spine Secure Proxy (ssp-reference.md section 3), so
 * consumer systems that already handle Spine's errors handle ours; the rest are ours.
 * The README's refusal table is checked against this catalogue by a test.
 */
export const refusalCatalogue = {
  MISSING_OR_INVALID_HEADER: { status: 400, issue: 'invalid', ssp: false },
  ENDPOINT_VARIES_FROM_TARGETURL: { status: 400, issue: 'invalid', ssp: true },
  ASID_CHECK_FAILED_MESSAGESENDER: { status: 403, issue: 'forbidden', ssp: true },
  PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER: { status: 403, issue: 'forbidden', ssp: true },
  FOT_CHECK_FAILED: { status: 403, issue: 'forbidden', ssp: true },
  METHOD_NOT_ALLOWED: { status: 405, issue: 'forbidden', ssp: true },
  MALFORMED_HTTP_REQUEST: { status: 400, issue: 'invalid', ssp: false },
  REQUEST_BODY_TOO_LARGE: { status: 413, issue: 'too-costly', ssp: false },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, issue: 'too-costly', ssp: false },
  ERROR_COMMUNICATING_TO_ENDPOINT: { status: 502, issue: 'transient', ssp: true },
  UPSTREAM_TIMEOUT: { status: 504, issue: 'timeout', ssp: false },
  AUDIT_UNAVAILABLE: { status: 503, issue: 'transient', ssp: false },
  RATE_LIMITED: { status: 429, issue: 'throttled', ssp: false },
  CONNECTION_OPTION_NOT_ALLOWED: { status: 400, issue: 'invalid', ssp: false },
  UPGRADE_NOT_SUPPORTED: { status: 400, issue: 'not-supported', ssp: false },
  AMBIGUOUS_PATH: { status: 400, issue: 'invalid', ssp: false },
  TOO_MANY_HEADERS: { status: 431, issue: 'too-costly', ssp: false },
  REQUEST_TIMEOUT: { status: 408, issue: 'timeout', ssp: false },
  CLIENT_TIMEOUT: { status: 408, issue: 'timeout', ssp: false },
} as const;

export type RefusalCode = keyof typeof refusalCatalogue;

/** The coding system the live SSP uses in its own OperationOutcomes (spec 1.2.6). */
export const SSP_CODING_SYSTEM = 'http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0';
/** The SSP's 405 body uses this system, severity fatal and display "405: Method Not Allowed". */
export const SSP_405_SYSTEM = 'https://fhir.nhs.uk/StructureDefinition/spine-operationoutcome-1';

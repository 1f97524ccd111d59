export { GatewayError } from './gateway-error';
export { Refusal, refuse, withoutQuery } from './refusal';
export { refusalCatalogue, type RefusalCode } from './refusal-catalogue';
export { renderOperationOutcome, chooseFormat, type OutcomeFormat, FHIR_JSON } from './operation-outcome';
export {
  classifyUpstreamFailure,
  type UpstreamFailure,
  UNEXPECTED_1XX,
  INVALID_RESPONSE_HEAD,
  UNSUPPORTED_TRANSFER_CODING,
  UNKNOWN_FAILURE,
  TIMED_OUT,
  CLOSED_MID_RESPONSE,
} from './upstream-failure';
export { ERROR_CODES, nonRefusalCodes, type ErrorCode, type NonRefusalCode } from './error-codes';

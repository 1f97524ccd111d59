import { refusalCatalogue, type RefusalCode } from './refusal-catalogue';

/**
 * A typed refusal: why the gateway answered instead of the provider.
 * `display` is the Spine-style code string consumers parse; `diagnostics` is a
 * sentence that tells the caller what to fix. Neither ever holds a query string,
 * a body, an ordinary header value or the token (ASIDs and endpoints are fine).
 */
export class Refusal {
  readonly status: number;
  constructor(
    readonly code: RefusalCode,
    readonly display: string,
    readonly diagnostics: string,
    /** Sent as Retry-After (seconds) when set. */
    readonly retryAfterSeconds = 0,
  ) {
    this.status = refusalCatalogue[code].status;
  }
}

/** The target without its query string: the SSP's messages show it, nothing more. */
export function withoutQuery(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

export const refuse = {
  invalidHeader(header: string, expected: string): Refusal {
    return new Refusal(
      'MISSING_OR_INVALID_HEADER',
      'MISSING_OR_INVALID_HEADER',
      `The ${header} header is missing, repeated or malformed: send exactly one, ${expected}.`,
    );
  },
  invalidTarget(why: string): Refusal {
    return new Refusal(
      'MISSING_OR_INVALID_HEADER',
      'MISSING_OR_INVALID_HEADER',
      `The request target is not a provider URL the gateway can forward to: ${why}. ` +
        'Write the provider endpoint from SDS after the gateway URL, e.g. /https://provider.example/ODS/STU3/1/gpconnect/...',
    );
  },
  endpointVaries(endpoint: string, target: string, to: string): Refusal {
    const shown = withoutQuery(target);
    return new Refusal(
      'ENDPOINT_VARIES_FROM_TARGETURL',
      `ENDPOINT_${endpoint}_VARIES_FROM_TARGETURL_${shown}`,
      `The target URL does not lie under the endpoint registered for Ssp-To ${to} and this interaction (${endpoint}): ` +
        'use that URL exactly as registered (same scheme, host and port, no IP address or extra default port), followed by the FHIR path.',
    );
  },
  senderNotAuthorised(from: string): Refusal {
    return new Refusal(
      'ASID_CHECK_FAILED_MESSAGESENDER',
      `ASID_CHECK_FAILED_MESSAGESENDER_${from}`,
      `Ssp-From ${from} is not a consumer accredited for this Ssp-InteractionID: check the ASID (the originating organisation's, not the host's) and its accredited interactions.`,
    );
  },
  /** The real proxy's sender code, when the client certificate is not one registered for Ssp-From. */
  certificateNotForSender(from: string): Refusal {
    return new Refusal(
      'ASID_CHECK_FAILED_MESSAGESENDER',
      `ASID_CHECK_FAILED_MESSAGESENDER_${from}`,
      `The client certificate is not one registered to speak for Ssp-From ${from}: connect with the certificate whose host name the directory lists for this ASID.`,
    );
  },
  receiverNotAuthorised(to: string): Refusal {
    return new Refusal(
      'PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER',
      `PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_${to}`,
      `Ssp-To ${to} has no endpoint registered for this Ssp-InteractionID: look the provider's ASID and endpoint up in SDS for this interaction.`,
    );
  },
  noAgreement(from: string, to: string): Refusal {
    return new Refusal(
      'FOT_CHECK_FAILED',
      `FOT_CHECK_FAILED_MESSAGESENDER_${from}_MESSAGERECEIVER_${to}`,
      `No data-sharing agreement covers the organisations of Ssp-From ${from} and Ssp-To ${to}: the agreement must be in place before they exchange messages.`,
    );
  },
  methodNotAllowed(allowed: readonly string[]): Refusal {
    return new Refusal('METHOD_NOT_ALLOWED', '405: Method Not Allowed', `This method is not allowed through the gateway; use one of ${allowed.join(', ')}.`);
  },
  malformedHttp(): Refusal {
    return new Refusal(
      'MALFORMED_HTTP_REQUEST',
      'MALFORMED_HTTP_REQUEST',
      'The HTTP request is malformed (for example a control character in a header, or both Content-Length and Transfer-Encoding): fix the client.',
    );
  },
  bodyTooLarge(limit: number): Refusal {
    return new Refusal('REQUEST_BODY_TOO_LARGE', 'REQUEST_BODY_TOO_LARGE', `The request body is larger than the gateway accepts (${limit} bytes).`);
  },
  headersTooLarge(limit: number): Refusal {
    return new Refusal(
      'REQUEST_HEADERS_TOO_LARGE',
      'REQUEST_HEADERS_TOO_LARGE',
      `The request headers are larger than the gateway accepts (${limit} bytes in all): send fewer or shorter headers.`,
    );
  },
  upstreamError(target: string): Refusal {
    return new Refusal(
      'ERROR_COMMUNICATING_TO_ENDPOINT',
      `ERROR_COMMUNICATING_TO_ENDPOINT_URL_${withoutQuery(target)}`,
      'The provider could not be reached or broke the connection before answering: retry later, and tell the provider if it persists.',
    );
  },
  auditUnavailable(): Refusal {
    return new Refusal(
      'AUDIT_UNAVAILABLE',
      'AUDIT_UNAVAILABLE',
      'The gateway cannot record this transaction durably right now, and does not forward unaudited traffic: retry shortly.',
    );
  },
  rateLimited(party: 'consumer' | 'provider', asid: string, perSecond: number, burst: number, retryAfterSeconds: number): Refusal {
    return new Refusal(
      'RATE_LIMITED',
      'RATE_LIMITED',
      `The ${party} ASID ${asid} is over its rate limit (${perSecond} requests/s, bursts of ${burst}): retry after ${retryAfterSeconds} s.`,
      retryAfterSeconds,
    );
  },
  /** A Connection header that names a field the gateway itself must act on (request smuggling). */
  connectionOption(named: string): Refusal {
    return new Refusal(
      'CONNECTION_OPTION_NOT_ALLOWED',
      'CONNECTION_OPTION_NOT_ALLOWED',
      `The Connection header names ${named}, which is not a hop-by-hop option: send Connection with keep-alive, close or your own extension fields only.`,
    );
  },
  upgradeNotSupported(): Refusal {
    return new Refusal(
      'UPGRADE_NOT_SUPPORTED',
      'UPGRADE_NOT_SUPPORTED',
      'GP Connect has no protocol upgrades (WebSocket, h2c): send the request without an Upgrade header.',
    );
  },
  /** A path below the endpoint that a provider might resolve to another endpoint (`why` names the form, never the path). */
  ambiguousPath(why: string): Refusal {
    return new Refusal(
      'AMBIGUOUS_PATH',
      'AMBIGUOUS_PATH',
      `The request holds ${why}, which a provider could resolve to another endpoint than the one checked here: send the plain FHIR path, with no override headers.`,
    );
  },
  /** JWT_CHECK=enforce: the token breaks these rules (codes only: never a claim's value). */
  jwtRejected(rules: readonly string[]): Refusal {
    return new Refusal(
      'BAD_REQUEST',
      'BAD_REQUEST',
      `The Authorization token breaks GP Connect JWT rules: ${rules.join(', ')}. Each code is explained in the gateway's README ("JWT check"); send a new token that keeps them.`,
    );
  },
  /** INTERACTION_CHECK=enforce: the method or path does not fit Ssp-InteractionID (the expected form, never the consumer's path). */
  interactionMismatch(interactionId: string, expectedMethod: string, expectedPath: string): Refusal {
    return new Refusal(
      'INTERACTION_MISMATCH',
      'INTERACTION_MISMATCH',
      `The request does not fit Ssp-InteractionID ${interactionId}: it expects ${expectedMethod} <endpoint>${expectedPath}. ` +
        'Send the interaction ID of the operation you mean, or the method and path of this one.',
    );
  },
  /** DIAGNOSE=off: `/_diagnose/...` is a target the gateway does not answer (nothing about the request is checked or told). */
  diagnoseNotAvailable(): Refusal {
    return new Refusal(
      'DIAGNOSE_NOT_AVAILABLE',
      'DIAGNOSE_NOT_AVAILABLE',
      "This gateway does not answer /_diagnose/ (DIAGNOSE=off): send the request to the provider URL itself, or ask the gateway's operator for diagnose.",
    );
  },
  /** DIAGNOSE=test and Ssp-From is not a test consumer (the same words for a live ASID, an unknown one and none). */
  diagnoseNotAllowed(): Refusal {
    return new Refusal(
      'DIAGNOSE_NOT_ALLOWED',
      'DIAGNOSE_NOT_ALLOWED',
      'Diagnose is open to test consumers only on this gateway (DIAGNOSE=test), and Ssp-From does not name one: ' +
        "send the Ssp-From of a consumer whose directory entry says environment: test, or ask the gateway's operator.",
    );
  },
  tooManyHeaders(limit: number): Refusal {
    return new Refusal('TOO_MANY_HEADERS', 'TOO_MANY_HEADERS', `The request has more header lines than the gateway accepts (${limit}): send fewer.`);
  },
  requestTimeout(timeoutMs: number): Refusal {
    return new Refusal('REQUEST_TIMEOUT', 'REQUEST_TIMEOUT', `The request headers did not arrive within ${timeoutMs} ms: send the whole header block at once.`);
  },
  clientTimeout(timeoutMs: number): Refusal {
    return new Refusal(
      'CLIENT_TIMEOUT',
      'CLIENT_TIMEOUT',
      `The request body stalled for ${timeoutMs} ms: the consumer stopped sending, so the provider was not kept waiting.`,
    );
  },
  upstreamTimeout(timeoutMs: number): Refusal {
    return new Refusal(
      'UPSTREAM_TIMEOUT',
      'UPSTREAM_TIMEOUT',
      `The provider did not answer within ${timeoutMs} ms: retry later, and tell the provider if it persists.`,
    );
  },
};

import { INTERACTION_FINDINGS, JWT_RULES, type InteractionFinding, type JwtRule } from '../check';
import type { Refusal } from '../errors';
import type { Exchange } from '../proxy';
import { REQUEST_CHECKS, speaksForConsumer, type CheckName, type CheckSettings, type RequestChecks } from './request-checks';

/**
 * Diagnose (README "Diagnose"): `<METHOD> /_diagnose/<provider URL>` on the proxy port runs
 * the proxy's own check list (request-checks.ts) on the consumer's request, with its
 * headers, token and connection, and answers what the proxy would do and why, instead of
 * forwarding. It never connects to a provider. The answer never holds the consumer's path,
 * query, body or token: only ASIDs, interaction IDs, ODS codes, the registered endpoint and
 * the codes of the checks.
 */
export const DIAGNOSE_PREFIX = '/_diagnose/';

/** One check as diagnose reports it. `ok`: the real request passes it; null: it could not be judged (an earlier check failed). */
export interface DiagnosedCheck {
  readonly check: CheckName;
  readonly ok: boolean | null;
  readonly detail: string;
}

export interface DiagnoseAnswer {
  readonly verdict: 'would_forward' | 'would_refuse';
  readonly checks: DiagnosedCheck[];
  /** The refusal the real request would get: the first check that fails. */
  readonly refusal?: { status: number; code: string; diagnostics: string };
  /** The endpoint registered for Ssp-To and the interaction. */
  readonly endpoint?: string;
  /** Ssp-From's environment and accredited interactions, when it is a known consumer and the connection may speak for it. */
  readonly consumer?: { asid: string; environment: string; interactions: string[] };
  readonly jwt: { mode: string; findings: Array<{ code: string; expected: string }> };
  readonly interaction: { mode: string; findings: Array<{ code: string; expected: string }>; expected?: { method: string; path: string } };
}

/**
 * Why a check cannot be judged for this request (something an earlier check should have
 * established is missing), or null when it can. On the proxy's path this never happens:
 * every check before runs and passes. `failed`: a check before this one failed.
 */
const CANNOT_JUDGE: Record<CheckName, (s: RequestChecks, c: CheckSettings, failed: boolean) => string | null> = {
  framing: () => null,
  method: () => null,
  headers: () => null,
  target: () => null,
  path_form: () => null,
  sender: (s) => (s.tx.consumerAsid === '' ? 'there is no well-formed Ssp-From (see headers)' : noInteraction(s)),
  receiver: (s) => (s.tx.providerAsid === '' ? 'there is no well-formed Ssp-To (see headers)' : noInteraction(s)),
  endpoint: (s) => (s.endpoint === undefined ? 'no endpoint is registered for Ssp-To and this interaction to compare the target with (see receiver)' : null),
  agreement: (s) =>
    s.consumer === undefined
      ? 'Ssp-From is not a consumer in the directory (see sender)'
      : s.provider === undefined
        ? 'Ssp-To is not a provider in the directory (see receiver)'
        : null,
  certificate: (s) => (s.consumer === undefined ? 'Ssp-From is not a consumer in the directory, so no certificate is registered for it (see sender)' : null),
  interaction: (s, c) =>
    c.interactionCheck.mode !== 'off' && s.upstreamPath === null
      ? 'the target does not lie under a registered endpoint, so there is no path below it to compare (see endpoint)'
      : null,
  jwt: () => null,
  body_size: () => null,
  rate_limit: (s, _c, failed) =>
    failed
      ? 'a real request is refused before the rate limit and takes no token, so this diagnose took none either'
      : s.consumer === undefined || s.provider === undefined
        ? 'Ssp-From or Ssp-To is not in the directory'
        : null,
};

function noInteraction(s: RequestChecks): string | null {
  return s.tx.interactionId === '' ? 'there is no well-formed Ssp-InteractionID (see headers)' : null;
}

/*
 * Ssp-From's accreditation and the provider's endpoint are told only to a connection that
 * may speak for a consumer in the directory (speaksForConsumer): an integrator sees its own
 * system's; a caller that is not a consumer learns no more than the real proxy would tell it
 * (which stops at the sender check).
 */

/** A provider's endpoint is routing knowledge for consumers in the directory: not told to a connection that is not one. */
const ENDPOINT_UNTOLD = 'The endpoint is told only to a consumer in the directory, on a connection that may speak for it (see sender and certificate).';

function accreditedList(s: RequestChecks): string {
  if (!speaksForConsumer(s)) return 'Its accredited interactions are told only to a connection that may speak for it (see certificate).';
  const list = [...s.consumer!.interactions].sort();
  return `It is accredited for: ${list.join(', ')}.`;
}

/** What diagnose says about each check once it has run: a sentence a person can act on. `refusal` is null when it passed. */
const EXPLAIN: Record<CheckName, (s: RequestChecks, c: CheckSettings, refusal: Refusal | null) => string> = {
  framing: (_s, _c, r) =>
    r?.diagnostics ??
    'HTTP/1.x with sound framing: one Host, no Upgrade, Connection naming hop-by-hop options only, no Expect other than 100-continue, no look-alike header names.',
  method: (s, c, r) =>
    r === null
      ? `${s.tx.method} is allowed through the gateway.`
      : `${s.tx.method} is not allowed through the gateway: use one of ${c.allowedMethods.join(', ')}.`,
  headers(s, _c, r) {
    if (r === null) return 'Ssp-TraceID, Ssp-From, Ssp-To and Ssp-InteractionID are each sent once and well formed.';
    const h = s.head!;
    const problems: string[] = [];
    if (h.repeated !== null) problems.push(`${h.repeated} is sent more than once (send it exactly once)`);
    if (h.traceId === null) problems.push('Ssp-TraceID is missing or not a GUID (send a new GUID for each request)');
    if (h.from === null) problems.push("Ssp-From is missing or not an ASID (send your consumer system's ASID, digits only)");
    if (h.to === null) problems.push("Ssp-To is missing or not an ASID (send the provider system's ASID from SDS, digits only)");
    if (h.interactionId === null) problems.push('Ssp-InteractionID is missing or not an interaction URN (urn:nhs:names:services:gpconnect:...)');
    return `${problems.join('; ')}.`;
  },
  target: (_s, _c, r) => r?.diagnostics ?? 'The target is an absolute http(s) URL the gateway can forward to.',
  path_form: (_s, _c, r) =>
    r?.diagnostics ?? 'The path holds no form a provider could resolve to another endpoint, and no header overrides the request line or Host.',
  sender(s) {
    const { consumerAsid: from, interactionId } = s.tx;
    const consumer = s.consumer;
    if (consumer === undefined)
      return (
        `Ssp-From ${from} is not in this gateway's directory: no consumer system has this ASID. ` +
        "Send your own consumer system's ASID (the one accredited in SDS for your product at this organisation), not a host's or the provider's."
      );
    if (!consumer.interactions.has(interactionId))
      return `Ssp-From ${from} is a consumer in the directory, but it is not accredited for ${interactionId}. ${accreditedList(s)} Send the interaction you are accredited for, or have this one added to the accreditation.`;
    return `Ssp-From ${from} is accredited for ${interactionId}.`;
  },
  receiver(s) {
    const { providerAsid: to, interactionId } = s.tx;
    if (s.provider === undefined)
      return `Ssp-To ${to} is not in this gateway's directory: no provider system has this ASID. Look the provider's ASID up in SDS for this interaction.`;
    if (s.endpoint === undefined)
      return (
        `Ssp-To ${to} is a provider in the directory (ODS ${s.provider.ods}), but it has no endpoint registered for ${interactionId}: ` +
        'check the interaction ID, or look up in SDS which ASID of the organisation serves it.'
      );
    return `Ssp-To ${to} has an endpoint registered for ${interactionId}${speaksForConsumer(s) ? `: ${s.endpoint.url}` : ''}.`;
  },
  endpoint(s, _c, r) {
    if (!speaksForConsumer(s))
      return r === null
        ? 'The target lies under the endpoint registered for Ssp-To and this interaction.'
        : `The target does not lie under the endpoint registered for Ssp-To and this interaction. ${ENDPOINT_UNTOLD}`;
    return r?.diagnostics ?? `The target lies under the registered endpoint ${s.endpoint!.url}.`;
  },
  agreement(s, _c, r) {
    const { consumer, provider } = s;
    if (r !== null)
      return (
        `No data-sharing agreement in the directory covers organisation ${consumer!.ods} (Ssp-From ${s.tx.consumerAsid}) and ${provider!.ods} (Ssp-To ${s.tx.providerAsid}): ` +
        'the agreement must be in place, and listed in the directory, before they exchange messages.'
      );
    if (s.index.agreements === null) return 'The directory lists no agreements: the data-sharing agreement check is off on this gateway.';
    return `An agreement covers organisation ${consumer!.ods} (Ssp-From) and ${provider!.ods} (Ssp-To).`;
  },
  certificate(s, _c, r) {
    const from = s.tx.consumerAsid;
    if (r === null) {
      if (s.consumer!.certificateFqdns === null)
        return `The directory binds no certificate to Ssp-From ${from}: any client certificate the gateway trusts may speak for it.`;
      return `The client certificate carries a host name registered for Ssp-From ${from}.`;
    }
    const peer = s.tx.tls;
    if (peer === null || peer.subject === '')
      return `No client certificate was presented, and the directory binds Ssp-From ${from} to a certificate: connect over mutual TLS with that certificate.`;
    const names = peer.hostNames.length === 0 ? 'none' : peer.hostNames.join(', ');
    return `The client certificate's host names (${names}) are not registered for Ssp-From ${from}: connect with the certificate whose host name the directory lists for this ASID.`;
  },
  interaction(s, c, r) {
    const { mode, check } = c.interactionCheck;
    if (mode === 'off') return 'INTERACTION_CHECK=off: the method and path are not compared with the interaction.';
    const { interactionId, method } = s.tx;
    const findings = s.tx.interactionFindings;
    const expected = check.expected(interactionId);
    const form = expected === null ? '' : ` It expects ${expected.method} <endpoint>${expected.path}.`;
    if (findings.length === 0) return `${method} and the path under the endpoint fit ${interactionId}.${form}`;
    const listed = findings.map((f) => `${f} (expected: ${INTERACTION_FINDINGS[f as InteractionFinding] ?? f})`).join(', ');
    const consequence =
      r !== null
        ? 'INTERACTION_CHECK=enforce: the request is refused.'
        : mode === 'enforce'
          ? 'The interaction has no form to enforce, so the request is forwarded and the finding recorded.'
          : 'INTERACTION_CHECK=report: the request is forwarded and the findings recorded; it would be refused under enforce.';
    return `The request does not fit ${interactionId}: ${listed}.${form} ${consequence}`;
  },
  jwt(s, c, r) {
    if (c.jwtCheck === 'off') return 'JWT_CHECK=off: the token is not checked.';
    const routeFree =
      s.endpoint === undefined ? ' aud and requested_scope were not compared with an endpoint and interaction: none matched (see receiver).' : '';
    const findings = s.tx.jwtFindings;
    if (findings.length === 0) return `The token keeps the GP Connect JWT rules the gateway checks.${routeFree}`;
    const listed = findings.map((f) => `${f} (expected: ${JWT_RULES[f as JwtRule] ?? f})`).join('; ');
    const consequence =
      r !== null
        ? 'JWT_CHECK=enforce: the request is refused.'
        : 'JWT_CHECK=report: the request is forwarded and the findings recorded; it would be refused under enforce.';
    return `The token breaks ${findings.length === 1 ? 'a rule' : `${findings.length} rules`}: ${listed}. ${consequence}${routeFree}`;
  },
  body_size(s, c, r) {
    if (r !== null) return r.diagnostics;
    const h = s.head!;
    if (h.hasTransferEncoding) return `The body is chunked: the real request is refused once more than ${c.maxBodyBytes} bytes of it have arrived.`;
    if (h.contentLength > 0) return `The body's declared length is within the gateway's limit of ${c.maxBodyBytes} bytes.`;
    return 'The request has no body.';
  },
  rate_limit: (_s, _c, r) =>
    r?.diagnostics ?? 'Within the rate limits of Ssp-From and Ssp-To: this diagnose took a token from each limited bucket, as the real request would.',
};

/**
 * Runs every check of the proxy's list on `s` that can run, in the proxy's order, and
 * says what the proxy would do. Checks after the first failure still run (a person sees
 * everything to fix at once), with two limits: a check that needs what a failed one
 * should have established is reported as not judged (ok null), and the rate limit takes a
 * token only when the real request would reach it (every check before it passes).
 */
export function diagnoseRequest(s: RequestChecks, c: CheckSettings): { answer: DiagnoseAnswer; refusal: Refusal | null; framingFailed: boolean } {
  const checks: DiagnosedCheck[] = [];
  let first: Refusal | null = null;
  let framingFailed = false;
  for (const step of REQUEST_CHECKS) {
    const why = CANNOT_JUDGE[step.name](s, c, first !== null);
    if (why !== null) {
      checks.push({ check: step.name, ok: null, detail: `Not checked: ${why}.` });
      continue;
    }
    const refusal = step.run(s, c);
    if (refusal !== null) {
      first ??= refusal;
      if (step.name === 'framing') framingFailed = true;
    }
    checks.push({ check: step.name, ok: refusal === null, detail: EXPLAIN[step.name](s, c, refusal) });
  }
  const { tx } = s;
  const expected = c.interactionCheck.mode === 'off' || tx.interactionId === '' ? null : c.interactionCheck.check.expected(tx.interactionId);
  const answer: DiagnoseAnswer = {
    verdict: first === null ? 'would_forward' : 'would_refuse',
    checks,
    ...(first !== null && { refusal: { status: first.status, code: first.code, diagnostics: first.diagnostics } }),
    ...(s.endpoint !== undefined && speaksForConsumer(s) && { endpoint: s.endpoint.url }),
    ...(s.consumer !== undefined &&
      speaksForConsumer(s) && { consumer: { asid: s.consumer.asid, environment: tx.environment, interactions: [...s.consumer.interactions].sort() } }),
    jwt: { mode: c.jwtCheck, findings: tx.jwtFindings.map((code) => ({ code, expected: JWT_RULES[code as JwtRule] ?? '' })) },
    interaction: {
      mode: c.interactionCheck.mode,
      findings: tx.interactionFindings.map((code) => ({ code, expected: INTERACTION_FINDINGS[code as InteractionFinding] ?? '' })),
      ...(expected !== null && { expected }),
    },
  };
  return { answer, refusal: first, framingFailed };
}

/**
 * Builds the responder for `/_diagnose/` requests: runs the checks, writes the answer
 * (200 application/json) and ends the transaction once, with outcome `diagnosed` and, as
 * its error code, the code of the refusal the real request would get ('' when it would be
 * forwarded). The answer goes out once its final record is written, as a forwarded reply
 * does. A body is read and dropped, never kept, when its Content-Length is within
 * MAX_REQUEST_BODY_BYTES (the connection stays open); a chunked body, one declared larger,
 * one after a framing refusal or one awaited with `Expect: 100-continue` is not read, and
 * the connection closes after the answer.
 */
export function createDiagnoseResponder(c: CheckSettings, ownHeaders: readonly string[]): (ex: Exchange, s: RequestChecks) => void {
  return function answerDiagnose(ex: Exchange, s: RequestChecks): void {
    const { req, res, tx, head } = ex;
    const { answer, refusal, framingFailed } = diagnoseRequest(s, c);
    // The parties are named in the record, as for a refusal.
    if (tx.consumerOds === '' && s.consumer !== undefined) tx.consumerOds = s.consumer.ods;
    if (tx.providerOds === '' && s.provider !== undefined) tx.providerOds = s.provider.ods;
    const body = JSON.stringify(answer);
    const length = Buffer.byteLength(body);
    const headers = ['Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(length), 'Cache-Control', 'no-store', ...ownHeaders];
    // A body is read and dropped only when its length is declared and within the limit (so
    // reading it is bounded); otherwise the connection closes after the answer, unread.
    const pending = head.hasBody && !req.complete;
    const close = framingFailed || (pending && (head.expectsContinue || head.hasTransferEncoding || head.contentLength > c.maxBodyBytes));
    if (close) headers.push('Connection', 'close');
    else if (pending) req.resume();
    res.writeHead(200, headers);
    tx.responseBytes = length;
    ex.end('diagnosed', 200, refusal?.code ?? '', () => res.end(body));
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwtClaims, type AuditSink } from '../audit';
import { inspectJwt, routedJwtFindings, type CheckMode, type InteractionCheck } from '../check';
import type { DirectoryStore } from '../directory';
import { ERROR_CODES, Refusal, refuse } from '../errors';
import type { RateLimiter } from '../limit';
import { certificateSpeaksFor, peerOf } from '../tls';
import type { Exchange, ProxyEngine } from '../proxy';
import { resolveRoute, type Route } from '../route';
import { Transaction } from '../transaction';
import {
  checkSspHeaders,
  forbiddenConnectionOption,
  overrideHeaderProblem,
  pathFormProblem,
  readRequestHead,
  targetSyntaxProblem,
  type RequestHead,
} from '../validate';
import { setExchange } from './connection-state';

export interface ProxyHandlerDeps {
  allowedMethods: readonly string[];
  maxBodyBytes: number;
  directory: DirectoryStore;
  /** Opens each request's Exchange (which ends its transaction, refused or forwarded) and forwards it. */
  engine: ProxyEngine;
  /** Null when audit is off (AUDIT_ENABLED=false). */
  audit: AuditSink | null;
  /** AUDIT_FAILURE_MODE=open: forward even when the in-flight record could not be made durable. */
  auditFailOpen: boolean;
  limiter: RateLimiter;
  /** MAX_HEADER_LINES: more field lines than this are refused with 431. */
  maxHeaderLines: number;
  /** JWT_CHECK. */
  jwtCheck: CheckMode;
  /** INTERACTION_CHECK, and the check compiled from INTERACTIONS_FILE. */
  interactionCheck: { mode: CheckMode; check: InteractionCheck };
  /** ENVIRONMENT: the environment of a consumer whose directory entry names none. */
  defaultEnvironment: string;
}

/**
 * A Transaction for `req` with what its head says about who asked: refused requests are
 * audited with who asked too, since that is what an investigation looks for.
 */
export function openTransaction(req: IncomingMessage, head: RequestHead, decodeClaims: boolean): Transaction {
  const tx = new Transaction(req.method ?? '', req.socket.remoteAddress ?? '');
  tx.tls = peerOf(req.socket);
  tx.traceId = head.traceId ?? '';
  tx.consumerAsid = head.from ?? '';
  tx.providerAsid = head.to ?? '';
  tx.interactionId = head.interactionId ?? '';
  if (decodeClaims) tx.claims = decodeJwtClaims(head.authorization);
  return tx;
}

/**
 * Refusals about the connection's own framing, checked before anything else: a request
 * that is refused here is answered with `Connection: close`, since what follows it on the
 * connection may not be what the consumer meant as its next request.
 */
export function framingRefusal(req: IncomingMessage, head: RequestHead, maxHeaderLines: number): Refusal | null {
  // Node hands over at most maxHeadersCount lines (set one above the limit): more is too many.
  if (req.rawHeaders.length > maxHeaderLines * 2) return refuse.tooManyHeaders(maxHeaderLines);
  if (head.upgrade) return refuse.upgradeNotSupported();
  if (head.connection !== null) {
    const named = forbiddenConnectionOption(head.connection);
    if (named !== null) return refuse.connectionOption(named);
  }
  // HTTP/0.9 and "HTTP/2.0" request lines parse on this port but are not HTTP/1.x
  // messages: the consumer would be answered in a framing it did not ask for.
  if (req.httpVersionMajor !== 1) return refuse.malformedHttp();
  if (head.underscoreAlias !== null)
    return refuse.invalidHeader(head.underscoreAlias, 'spelt with "-" (a name with "_" for "-" is read as the same header by some provider stacks)');
  // RFC 9110 10.1.1: the only expectation is 100-continue; anything else would get Node's bare 417.
  if (head.unmetExpectation) return refuse.invalidHeader('Expect', '"100-continue", or no Expect header');
  if (req.httpVersionMinor === 1 ? head.hosts !== 1 : head.hosts > 1) return refuse.invalidHeader('Host', 'the host name the consumer connected to');
  // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  if (req.httpVersionMinor === 0 && head.hasTransferEncoding) return refuse.malformedHttp();
  // The same refusal Node's parser gives `chunked, identity`: only one `chunked` is relayed.
  if (head.otherTransferCoding) return refuse.malformedHttp();
  return null;
}

/**
 * The proxy port's request handler: a plain node:http handler (no express on the hot
 * path) that validates, routes, and hands both streams to the proxy engine. Anything
 * that fails is answered by the gateway before a byte reaches a provider. Each request's
 * one object is its Exchange: a refusal here ends the transaction through its `end`, as
 * everything after forwarding does.
 */
export function createProxyHandler(deps: ProxyHandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const allowed = new Set(deps.allowedMethods);

  function deny(ex: Exchange, refusal: Refusal, close = ex.head.hasBody && !ex.req.complete): void {
    // A refusal of a known party still names its organisation, so counts by ODS code include refusals.
    const { tx } = ex;
    const index = deps.directory.current;
    if (index !== null) {
      if (tx.consumerOds === '') tx.consumerOds = index.consumers.get(tx.consumerAsid)?.ods ?? '';
      if (tx.providerOds === '') tx.providerOds = index.providers.get(tx.providerAsid)?.ods ?? '';
    }
    ex.end('denied', refusal, close);
  }

  return function handleProxyRequest(req: IncomingMessage, res: ServerResponse): void {
    res.sendDate = false; // a provider's response gets no Date it did not send
    const head = readRequestHead(req.rawHeaders);
    // RFC 9110 10.1.1 and 15.2: 100-continue from an HTTP/1.0 client is ignored, and it is sent no 1xx.
    if (req.httpVersionMinor !== 1) head.expectsContinue = false;
    const headerProblem = checkSspHeaders(head);
    const tx = openTransaction(req, head, false);
    // One decode of the token per request: the audit's claims and the JWT check's findings.
    const inspection = deps.audit !== null || deps.jwtCheck !== 'off' ? inspectJwt(head.authorization, tx.receivedAt) : null;
    if (inspection !== null && deps.audit !== null) tx.claims = inspection.claims;
    const jwt = deps.jwtCheck === 'off' ? null : inspection;
    if (jwt !== null) tx.jwtFindings = jwt.findings;
    tx.environment = deps.directory.current?.consumers.get(tx.consumerAsid)?.environment ?? deps.defaultEnvironment;
    const ex = deps.engine.open(req, res, tx, head);
    setExchange(res, ex);
    const framing = framingRefusal(req, head, deps.maxHeaderLines);
    if (framing !== null) return deny(ex, framing, true);
    if (!allowed.has(tx.method)) return deny(ex, refuse.methodNotAllowed(deps.allowedMethods));
    if (headerProblem !== null) return deny(ex, headerProblem);

    const url = req.url ?? '';
    // Origin-form only: "/" then the provider URL. An absolute-form target (GET http://x/ HTTP/1.1) is refused.
    const targetProblem = url.charCodeAt(0) === 0x2f ? targetSyntaxProblem(url.slice(1)) : 'the request-target must be "/" followed by the provider URL';
    if (targetProblem !== null) return deny(ex, refuse.invalidTarget(targetProblem));
    const ambiguousForm = pathFormProblem(url.slice(1)) ?? overrideHeaderProblem(req.rawHeaders); // a path a provider may resolve to another endpoint
    if (ambiguousForm !== null) return deny(ex, refuse.ambiguousPath(ambiguousForm));

    const index = deps.directory.current!;
    const route = resolveRoute(index, tx.consumerAsid, tx.providerAsid, tx.interactionId, url.slice(1));
    if (route instanceof Refusal) return deny(ex, route);
    // Spine's check 3: the certificate's host name must be one registered for the sender's ASID.
    const fqdns = route.consumer.certificateFqdns;
    if (fqdns !== null && !certificateSpeaksFor(tx.tls, fqdns)) return deny(ex, refuse.certificateNotForSender(tx.consumerAsid));
    tx.consumerOds = route.consumer.ods;
    tx.providerOds = route.provider.ods;
    tx.endpoint = route.endpoint.url;
    tx.targetHost = route.endpoint.hostHeader;

    // Beyond the SSP: what the request does must be what its interaction says (the audit records what happened).
    const interaction = deps.interactionCheck;
    if (interaction.mode !== 'off') {
      tx.interactionFindings = interaction.check.findings(tx.interactionId, tx.method, route);
      const expected = interaction.mode === 'enforce' && tx.interactionFindings.length > 0 ? interaction.check.expected(tx.interactionId) : null;
      if (expected !== null) return deny(ex, refuse.interactionMismatch(tx.interactionId, expected.method, expected.path));
    }
    if (jwt !== null) {
      tx.jwtFindings = routedJwtFindings(jwt, route.endpoint.url, interaction.check.requiredScope(tx.interactionId));
      if (deps.jwtCheck === 'enforce' && tx.jwtFindings.length > 0) return deny(ex, refuse.jwtRejected(tx.jwtFindings));
    }

    if (head.contentLength > deps.maxBodyBytes) return deny(ex, refuse.bodyTooLarge(deps.maxBodyBytes));
    const over = deps.limiter.admit(tx.consumerAsid, route.consumer.rateLimit, tx.providerAsid, route.provider.rateLimit);
    if (over !== null) return deny(ex, refuse.rateLimited(over.party, over.asid, over.limit.perSecond, over.limit.burst, over.retryAfterSeconds));
    const audit = deps.audit;
    if (audit === null) return deps.engine.forward(ex, route);
    // No request reaches a provider unless its record is durable on local disk.
    audit.begin(tx).then(
      () => forwardUnlessGone(ex, route),
      () => {
        if (deps.auditFailOpen) forwardUnlessGone(ex, route);
        else if (tx.outcome === 'in_flight') deny(ex, refuse.auditUnavailable());
      },
    );
  };

  /** The consumer may have gone, or been refused, while the record was being made durable: then nothing is forwarded. */
  function forwardUnlessGone(ex: Exchange, route: Route): void {
    // Meanwhile the parser may have refused the request's body (clientError ended the transaction).
    if (ex.tx.outcome !== 'in_flight') return;
    if (ex.res.destroyed || ex.req.socket.destroyed) return ex.end('client_aborted', 499, ERROR_CODES.CLIENT_ABORTED);
    deps.engine.forward(ex, route);
  }
}

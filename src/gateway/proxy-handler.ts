import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { decodeJwtClaims, type AuditSink } from '../audit';
import type { DirectoryStore } from '../directory';
import { Refusal, refuse } from '../errors';
import type { RateLimiter } from '../limit';
import { certificateSpeaksFor, peerOf } from '../tls';
import type { ProxyEngine, RefusalWriter, TransactionDone } from '../proxy';
import { resolveRoute, type Route } from '../route';
import { Transaction } from '../transaction';
import { checkSspHeaders, overrideHeaderProblem, pathFormProblem, readRequestHead, targetSyntaxProblem, type RequestHead } from '../validate';
import { rawRefusalResponse } from './refusal-writer';

export interface ProxyHandlerDeps {
  allowedMethods: readonly string[];
  maxBodyBytes: number;
  directory: DirectoryStore;
  engine: ProxyEngine;
  writeRefusal: RefusalWriter;
  done: TransactionDone;
  /** Null when audit is off (AUDIT_ENABLED=false). */
  audit: AuditSink | null;
  /** AUDIT_FAILURE_MODE=open: forward even when the in-flight record could not be made durable. */
  auditFailOpen: boolean;
  limiter: RateLimiter;
}

/**
 * The proxy port's request handler: a plain node:http handler (no express on the hot
 * path) that validates, routes, and hands both streams to the proxy engine. Anything
 * that fails is answered by the gateway before a byte reaches a provider.
 */
export function createProxyHandler(deps: ProxyHandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const allowed = new Set(deps.allowedMethods);

  function deny(req: IncomingMessage, res: ServerResponse, tx: Transaction, head: RequestHead, refusal: Refusal): void {
    tx.responseBytes = deps.writeRefusal(res, refusal, head.accept, head.hasBody && !req.complete);
    if (tx.finish('denied', refusal.status, refusal.code)) deps.done(tx);
  }

  return function handleProxyRequest(req: IncomingMessage, res: ServerResponse): void {
    res.sendDate = false; // a provider's response gets no Date it did not send
    const tx = new Transaction(req.method ?? '', req.socket.remoteAddress ?? '');
    tx.tls = peerOf(req.socket);
    const head = readRequestHead(req.rawHeaders);
    const headerProblem = checkSspHeaders(head);
    tx.traceId = head.traceId ?? '';
    tx.consumerAsid = head.from ?? '';
    tx.providerAsid = head.to ?? '';
    tx.interactionId = head.interactionId ?? '';
    // Refused requests are audited with who asked, too: that is what an investigation looks for.
    if (deps.audit !== null) tx.claims = decodeJwtClaims(head.authorization);
    if (!allowed.has(tx.method)) return deny(req, res, tx, head, refuse.methodNotAllowed(deps.allowedMethods));
    if (headerProblem !== null) return deny(req, res, tx, head, headerProblem);

    const url = req.url ?? '';
    // Origin-form only: "/" then the provider URL. An absolute-form target (GET http://x/ HTTP/1.1) is refused.
    const targetProblem = url.charCodeAt(0) === 0x2f ? targetSyntaxProblem(url.slice(1)) : 'the request-target must be "/" followed by the provider URL';
    if (targetProblem !== null) return deny(req, res, tx, head, refuse.invalidTarget(targetProblem));
    const ambiguousForm = pathFormProblem(url.slice(1)) ?? overrideHeaderProblem(req.rawHeaders); // a path a provider may resolve to another endpoint
    if (ambiguousForm !== null) return deny(req, res, tx, head, refuse.ambiguousPath(ambiguousForm));

    const index = deps.directory.current!;
    const route = resolveRoute(index, tx.consumerAsid, tx.providerAsid, tx.interactionId, url.slice(1));
    if (route instanceof Refusal) return deny(req, res, tx, head, route);
    // Spine's check 3: the certificate's host name must be one registered for the sender's ASID.
    const fqdns = route.consumer.certificateFqdns;
    if (fqdns !== null && !certificateSpeaksFor(tx.tls, fqdns)) return deny(req, res, tx, head, refuse.certificateNotForSender(tx.consumerAsid));
    tx.consumerOds = route.consumer.ods;
    tx.providerOds = route.provider.ods;
    tx.endpoint = route.endpoint.url;
    tx.targetHost = route.endpoint.hostHeader;

    if (head.contentLength > deps.maxBodyBytes) return deny(req, res, tx, head, refuse.bodyTooLarge(deps.maxBodyBytes));
    const over = deps.limiter.admit(tx.consumerAsid, route.consumer.rateLimit, tx.providerAsid, route.provider.rateLimit);
    if (over !== null) return deny(req, res, tx, head, refuse.rateLimited(over.party, over.asid, over.limit.perSecond, over.limit.burst, over.retryAfterSeconds));
    const audit = deps.audit;
    if (audit === null) return deps.engine.forward(req, res, tx, route, head);
    // No request reaches a provider unless its record is durable on local disk.
    audit.begin(tx).then(
      () => forwardUnlessGone(req, res, tx, route, head),
      () => (deps.auditFailOpen ? forwardUnlessGone(req, res, tx, route, head) : deny(req, res, tx, head, refuse.auditUnavailable())),
    );
  };

  /** The consumer may have gone while the record was being made durable: then nothing is forwarded. */
  function forwardUnlessGone(req: IncomingMessage, res: ServerResponse, tx: Transaction, route: Route, head: RequestHead): void {
    if (res.destroyed || req.socket.destroyed) {
      if (tx.finish('client_aborted', 499, 'CLIENT_ABORTED')) deps.done(tx);
      return;
    }
    deps.engine.forward(req, res, tx, route, head);
  }
}

/**
 * Requests Node's strict parser rejects (CR/LF/NUL in a header, Content-Length with
 * Transfer-Encoding, an oversized header block, garbage) never reach the handler:
 * answer them with an OperationOutcome on the socket, close it, and record the refusal.
 */
export function createClientErrorHandler(
  ownHeaders: readonly string[],
  maxHeaderBytes: number,
  done: TransactionDone,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return function handleClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const refusal = err.code === 'HPE_HEADER_OVERFLOW' ? refuse.headersTooLarge(maxHeaderBytes) : refuse.malformedHttp();
    const tx = new Transaction('', socket.remoteAddress ?? '');
    tx.failureReason = /^[A-Z_]{1,40}$/.test(err.code ?? '') ? err.code! : 'UNKNOWN';
    const response = rawRefusalResponse(refusal, ownHeaders);
    tx.responseBytes = response.length;
    socket.end(response);
    if (tx.finish('denied', refusal.status, refusal.code)) done(tx);
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditSink } from '../audit';
import { inspectJwt, type CheckMode, type InteractionCheck } from '../check';
import type { DirectoryStore } from '../directory';
import { ERROR_CODES, refuse, type Refusal } from '../errors';
import type { RateLimiter } from '../limit';
import { peerOf } from '../tls';
import type { Exchange, ProxyEngine } from '../proxy';
import type { Route } from '../route';
import { Transaction } from '../transaction';
import { checkSspHeaders, readRequestHead, type RequestHead } from '../validate';
import { setExchange } from './connection-state';
import { createDiagnoseResponder, DIAGNOSE_PREFIX } from './diagnose';
import { FRAMING, framingRefusal, REQUEST_CHECKS, RequestChecks, type CheckSettings } from './request-checks';

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
  /** DIAGNOSE: who may ask `/_diagnose/<provider URL>` (README "Diagnose"). */
  diagnose: 'test' | 'all' | 'off';
  /** Headers the gateway adds to its own answers (diagnose's). */
  ownHeaders: readonly string[];
}

/**
 * A Transaction for `req` with what its head says about who asked: refused requests are
 * audited with who asked too, since that is what an investigation looks for.
 */
export function openTransaction(req: IncomingMessage, head: RequestHead): Transaction {
  const tx = new Transaction(req.method ?? '', req.socket.remoteAddress ?? '');
  tx.tls = peerOf(req.socket);
  tx.traceId = head.traceId ?? '';
  tx.consumerAsid = head.from ?? '';
  tx.providerAsid = head.to ?? '';
  tx.interactionId = head.interactionId ?? '';
  return tx;
}

/**
 * The proxy port's request handler: a plain node:http handler (no express on the hot
 * path) that runs the ordered checks (request-checks.ts), and hands both streams to the
 * proxy engine. Anything that fails is answered by the gateway before a byte reaches a
 * provider. Each request's one object is its Exchange: a refusal here ends the
 * transaction through its `end`, as everything after forwarding does. A target under
 * `/_diagnose/` runs the same checks and is answered by diagnose (diagnose.ts), never forwarded.
 */
export function createProxyHandler(deps: ProxyHandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const checks: CheckSettings = {
    allowedMethods: deps.allowedMethods,
    allowed: new Set(deps.allowedMethods),
    maxHeaderLines: deps.maxHeaderLines,
    maxBodyBytes: deps.maxBodyBytes,
    limiter: deps.limiter,
    jwtCheck: deps.jwtCheck,
    interactionCheck: deps.interactionCheck,
  };
  const answerDiagnose = createDiagnoseResponder(checks, deps.ownHeaders);

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
    const tx = openTransaction(req, head);
    // One decode of the token per request: the audit's claims and the JWT check's findings.
    const inspection = deps.audit !== null || deps.jwtCheck !== 'off' ? inspectJwt(head.authorization, tx.receivedAt) : null;
    if (inspection !== null && deps.audit !== null) tx.claims = inspection.claims;
    const jwt = deps.jwtCheck === 'off' ? null : inspection;
    if (jwt !== null) tx.jwtFindings = jwt.findings;
    const index = deps.directory.current!;
    tx.environment = index.consumers.get(tx.consumerAsid)?.environment ?? deps.defaultEnvironment;
    const ex = deps.engine.open(req, res, tx, head);
    setExchange(res, ex);

    let url = req.url ?? '';
    if (url.startsWith(DIAGNOSE_PREFIX)) {
      // A refusal of the connection's framing stands first (and closes it), as for any request.
      const framing = framingRefusal(req, head, deps.maxHeaderLines);
      if (deps.diagnose === 'off') return deny(ex, framing ?? refuse.diagnoseNotAvailable(), framing !== null || undefined);
      if (deps.diagnose === 'test' && tx.environment !== 'test') return deny(ex, framing ?? refuse.diagnoseNotAllowed(), framing !== null || undefined);
      url = url.slice(DIAGNOSE_PREFIX.length - 1); // "/" then the provider URL, as the proxy reads a target
      return answerDiagnose(ex, new RequestChecks(req, head, tx, url, index, headerProblem, jwt));
    }

    // Every check, in order: the first that fails is the answer (a framing refusal closes the connection).
    const s = new RequestChecks(req, head, tx, url, index, headerProblem, jwt);
    for (let i = 0; i < REQUEST_CHECKS.length; i++) {
      const step = REQUEST_CHECKS[i];
      const refusal = step.run(s, checks);
      if (refusal !== null) return deny(ex, refusal, step === FRAMING || undefined);
    }
    const route = s.route!;
    const audit = deps.audit;
    if (audit === null) return deps.engine.forward(ex, route);
    // No request reaches a provider unless its record is durable on local disk.
    // A callback (no promise per request); a record refused at once is told before begin returns.
    audit.begin(tx, (err) => {
      if (err === undefined || deps.auditFailOpen) forwardUnlessGone(ex, route);
      else if (tx.outcome === 'in_flight') deny(ex, refuse.auditUnavailable());
    });
  };

  /** The consumer may have gone, or been refused, while the record was being made durable: then nothing is forwarded. */
  function forwardUnlessGone(ex: Exchange, route: Route): void {
    // Meanwhile the parser may have refused the request's body (clientError ended the transaction).
    if (ex.tx.outcome !== 'in_flight') return;
    if (ex.res.destroyed || ex.req.socket.destroyed) return ex.end('client_aborted', 499, ERROR_CODES.CLIENT_ABORTED);
    deps.engine.forward(ex, route);
  }
}

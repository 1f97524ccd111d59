import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../log';

/**
 * The header the proxy sets to the caller's address (after deleting every copy the caller
 * sent): the investigations API, on its Unix socket, has no peer address of its own, and
 * its access log takes `client_ip` from this (src/investigate/access-log.ts).
 */
export const PEER_HEADER = 'x-spine-peer';

/** What the supervisor knows of the store process: down while it restarts (`detail` says why, for people). */
export interface StoreState {
  up: boolean;
  detail?: string;
}

export interface AuditStoreProxyOptions {
  /** Most time a connect to the socket may take (default 2 s): a store that cannot take it is answered 503. */
  connectTimeoutMs?: number;
  /**
   * Most time from sending the request to the store's status line (default 120 s): a store
   * stuck in a query is answered 503, never a client left hanging. Once the answer has
   * begun it streams as long as it takes (an export of millions of rows is slow, and waits
   * on a slow client).
   */
  answerTimeoutMs?: number;
  /** Where "audit API: store did not answer" lines go (never with a path or query). */
  log?: Logger;
}

/** Request header fields that are the connection's, not the request's: never forwarded. The caller's peer header is dropped too. */
const HOP_BY_HOP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', PEER_HEADER]);
/** Answer header fields the gateway's own connection to the client decides. */
const HOP_BY_HOP_ANSWER = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade']);

class StoreTimeout extends Error {
  constructor(
    readonly code: 'STORE_CONNECT_TIMEOUT' | 'STORE_ANSWER_TIMEOUT',
    readonly ms: number,
  ) {
    super(code);
  }
}

/**
 * The admin port's /audit/* handler: hands the request to the investigations API that the
 * audit store process serves on a Unix socket (src/investigate serveOnSocket), and streams
 * its answer back. Everything that decides the answer stays in the store's app: the token
 * check, the loopback-Host guard and the access log see the request as the caller sent it
 * (method, path and query, every header line as sent, Authorization lines counted, Host
 * kept; only hop-by-hop fields and any caller-sent PEER_HEADER go), plus PEER_HEADER set
 * to the caller's address.
 *
 * Answers stream both ways with backpressure, never buffered (an export is hundreds of
 * MiB). A caller that goes away aborts the store's request (the export stops); a store that
 * dies mid-answer ends the caller's connection without a clean end, so a truncated export
 * looks truncated. Whenever the store cannot answer (the supervisor says it is down, the
 * socket is absent or refuses, the connection drops before the status line, or a timeout)
 * the caller gets 503 `{"error":"audit store unavailable","message":...}` with
 * Cache-Control: no-store.
 */
export function auditStoreProxy(socketPath: string, storeState: () => StoreState, options: AuditStoreProxyOptions = {}): RequestHandler {
  const connectTimeoutMs = options.connectTimeoutMs ?? 2000;
  const answerTimeoutMs = options.answerTimeoutMs ?? 120_000;
  const log = options.log;

  return (req: Request, res: Response): void => {
    const state = storeState();
    if (!state.up) {
      unavailable(res, { reason: 'down', detail: state.detail });
      req.resume();
      return;
    }
    let upstream: ClientRequest;
    try {
      upstream = request({
        socketPath,
        method: req.method,
        // Not app.use-mounted (admin-app.ts): the whole path with its query, as the caller sent it.
        path: req.originalUrl,
        headers: forwardedHeaders(req),
        setHost: false,
        agent: false,
      });
    } catch (err) {
      // A path node:http will not send (the server's parser let it through): the store would not have known it either.
      res.status(400).json({ error: 'bad request', message: 'the request line could not be passed on to the audit store' });
      log?.warn({ code: (err as NodeJS.ErrnoException).code, method: req.method }, 'audit API: request not passed to the audit store');
      return;
    }
    let answered = false;
    let callerGone = false;
    const answerTimer = setTimeout(() => upstream.destroy(new StoreTimeout('STORE_ANSWER_TIMEOUT', answerTimeoutMs)), answerTimeoutMs);
    upstream.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => upstream.destroy(new StoreTimeout('STORE_CONNECT_TIMEOUT', connectTimeoutMs)), connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });

    // The caller gone before the answer began: the store's request goes too (after, pipeline() below does it).
    res.on('close', () => {
      clearTimeout(answerTimer);
      if (!res.writableFinished) callerGone = true;
      if (!answered) upstream.destroy();
    });

    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(answerTimer);
      req.unpipe(upstream);
      if (answered || res.headersSent) {
        res.destroy();
        return;
      }
      if (callerGone) return; // nobody to answer
      req.resume();
      const timeout = err instanceof StoreTimeout ? err : null;
      log?.warn(
        { code: 'GW_ERR_AUDIT_STORE_UNAVAILABLE', cause: err.code ?? 'unknown', method: req.method },
        'audit API: the audit store did not answer; 503 sent',
      );
      unavailable(res, timeout?.code === 'STORE_ANSWER_TIMEOUT' ? { reason: 'slow', ms: timeout.ms } : { reason: 'down', detail: storeState().detail });
    });

    upstream.on('response', (answer: IncomingMessage) => {
      answered = true;
      clearTimeout(answerTimer);
      if (callerGone) {
        answer.destroy();
        return;
      }
      // The store's app decides every header of its answer (its own helmet set, no-store, ...).
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP_ANSWER.has(name)) res.setHeader(name, value);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage);
      // Backpressure both ways; an error on either side (the store died, the caller left) destroys both.
      pipeline(answer, res, (err) => {
        if (err) {
          res.destroy();
          upstream.destroy();
        }
      });
    });

    req.pipe(upstream);
  };
}

/** The caller's header lines as sent (duplicates, order, case), less hop-by-hop ones, plus PEER_HEADER. */
function forwardedHeaders(req: Request): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let body = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === 'transfer-encoding') body = true;
    // Fields the caller named in Connection are forwarded all the same: dropping them would let a caller remove Host, which the tokenless guard reads.
    if (!HOP_BY_HOP_REQUEST.has(name)) out.push(raw[i], raw[i + 1]);
  }
  // The body arrived de-chunked: it is chunked again on the way to the store.
  if (body) out.push('Transfer-Encoding', 'chunked');
  const peer = req.socket.remoteAddress;
  if (peer !== undefined) out.push(PEER_HEADER, peer);
  return out;
}

type Why = { reason: 'down'; detail?: string } | { reason: 'slow'; ms: number };

function unavailable(res: Response, why: Why): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const message =
    why.reason === 'slow'
      ? `the audit store process did not answer within ${Math.round(why.ms / 1000)} s (busy with a long query, or stuck); ` +
        'the audit trail is kept on disk meanwhile; try again shortly, with a narrower time range for a search or export; ' +
        "if it goes on, the gateway's log says what the store process is doing"
      : 'the audit store process is not answering (it is restarting, or starting up); ' +
        'the audit trail is kept on disk meanwhile and reaches the store when it is back; try again shortly';
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Retry-After', '5');
  res.status(503).json({ error: 'audit store unavailable', message, ...(why.reason === 'down' && why.detail ? { detail: why.detail } : {}) });
}

import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { classifyUpstreamFailure, refuse, type Refusal } from '../errors';
import type { Route } from '../route';
import type { Transaction } from '../transaction';
import type { RequestHead } from '../validate';
import { connectionTokens, forwardedValue, headersForConsumer, headersForProvider } from './hop-by-hop';

export interface ProxyEngineOptions {
  /** Provider inactivity timeout (UPSTREAM_TIMEOUT_MS). */
  timeoutMs: number;
  /** Keep-alive sockets per provider host:port (UPSTREAM_MAX_SOCKETS). */
  maxSockets: number;
  /** Idle keep-alive sockets are closed after this (UPSTREAM_IDLE_MS), or sooner if the provider hints so. */
  idleMs: number;
  /** Largest request body relayed (MAX_REQUEST_BODY_BYTES), for bodies without Content-Length. */
  maxBodyBytes: number;
  /** Append an RFC 7239 Forwarded field line. */
  forwardedHeader: boolean;
  /** Whether the consumer leg is TLS (for Forwarded proto=). */
  consumerTls: boolean;
  /**
   * The provider leg's TLS: CAs to verify providers with (default: Node's public CAs) and
   * the gateway's own client certificate and key. Host names are always verified.
   */
  upstreamTls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** Writes a refusal as the gateway's own response; returns the body's size in bytes. */
export type RefusalWriter = (res: ServerResponse, refusal: Refusal, accept: string | undefined, closeConnection: boolean) => number;

/** Called once per transaction when it ends, however it ends. */
/**
 * Hands a finished transaction on (audit, metrics, log). `then`, when given, runs once
 * its final record is in the audit file: the proxy ends a completed reply there.
 */
export type TransactionDone = (tx: Transaction, then?: () => void) => void;

/** Marks the error the inactivity timer raises, so it is told apart from the provider's own failures. */
class UpstreamTimeout extends Error {
  readonly code = 'ETIMEDOUT';
}

/**
 * Relays the provider's response body to the consumer, counting bytes on the way: what
 * pipe() does for this one pair (write, pause on a full buffer, resume on drain, end),
 * without the listeners pipe() adds for cases that cannot happen here. `complete` runs
 * when the provider's response is complete and is given the consumer's res.end() to
 * call once the transaction's final record is written.
 *
 * The latest chunk is held back until the next one arrives, and the last one goes out
 * with res.end(): with a Content-Length reply the last body byte completes it for the
 * consumer, so that byte must wait for the final record too (else a kill between the
 * two leaves a reply the consumer holds recorded as `interrupted`). One chunk, at most,
 * waits here.
 */
function relayResponse(incoming: IncomingMessage, res: ServerResponse, tx: Transaction, complete: (endReply: () => void) => void): void {
  let held: Buffer | null = null;
  incoming.on('data', (chunk: Buffer) => {
    tx.responseBytes += chunk.length;
    if (held !== null && !res.write(held)) incoming.pause();
    held = chunk;
  });
  res.on('drain', () => incoming.resume());
  incoming.on('end', () => complete(() => (held === null ? res.end() : res.end(held))));
}

/**
 * Streams a consumer's request to the provider and the provider's response back, both
 * ways byte for byte: no body parser, no buffering, backpressure respected both ways
 * (pipe() up, relayResponse() down), bytes counted by watching the streams. Connects
 * only to the route's registered endpoint.
 * Keep-alive agents are built once and bounded per provider host.
 */
export class ProxyEngine {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;

  constructor(
    private readonly options: ProxyEngineOptions,
    private readonly writeRefusal: RefusalWriter,
    private readonly done: TransactionDone,
  ) {
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets,
      maxFreeSockets: options.maxSockets,
      timeout: options.idleMs,
      scheduling: 'lifo' as const,
    };
    this.httpAgent = new HttpAgent(agentOptions);
    // One secure context built here, not ca/cert/key as agent options: https.Agent writes
    // those PEM buffers into every request's pool key (getName), kilobytes hashed per request.
    const secureContext = createSecureContext({ ...options.upstreamTls, minVersion: 'TLSv1.2' });
    this.httpsAgent = new HttpsAgent({ ...agentOptions, secureContext, rejectUnauthorized: true });
  }

  forward(req: IncomingMessage, res: ServerResponse, tx: Transaction, route: Route, head: RequestHead): void {
    tx.forwardedMs = tx.elapsedMs();
    const { endpoint } = route;
    const headers = headersForProvider(
      req.rawHeaders,
      connectionTokens(head.connection),
      endpoint.hostHeader,
      this.options.forwardedHeader ? forwardedValue(tx.clientIp, this.options.consumerTls) : null,
    );
    const tls = endpoint.protocol === 'https:';
    let upstream: ClientRequest;
    try {
      upstream = (tls ? httpsRequest : httpRequest)({
        agent: tls ? this.httpsAgent : this.httpAgent,
        host: endpoint.hostname,
        port: endpoint.port,
        servername: tls && isIP(endpoint.hostname) === 0 ? endpoint.hostname : undefined,
        method: tx.method,
        path: route.upstreamPath,
        headers,
      });
    } catch {
      // Node refused to build the request (a header it will not send): nothing left the gateway.
      this.refuseNow(req, res, tx, head, refuse.upstreamError(req.url!.slice(1)), 'upstream_error');
      return;
    }
    const engine = this;
    let timedOut = false;
    let proxyRes: IncomingMessage | null = null;

    function end(outcome: Transaction['outcome'], status: number, code = '', then?: () => void): void {
      if (tx.finish(outcome, status, code)) engine.done(tx, then);
      else then?.();
    }

    upstream.setTimeout(this.options.timeoutMs, () => {
      timedOut = true;
      upstream.destroy(new UpstreamTimeout('provider timed out'));
    });

    if (head.expectsContinue) upstream.on('continue', () => res.writeContinue());

    upstream.once('socket', (socket) => {
      if (!socket.connecting) tx.upstreamConnectMs = 0; // a pooled keep-alive socket
      else socket.once(tls ? 'secureConnect' : 'connect', () => (tx.upstreamConnectMs = tx.elapsedMs()));
    });

    upstream.on('response', (incoming: IncomingMessage) => {
      proxyRes = incoming;
      tx.upstreamTtfbMs = tx.elapsedMs();
      const status = incoming.statusCode ?? 502;
      const out = headersForConsumer(incoming.rawHeaders);
      // The consumer is still uploading but the provider has answered: this connection cannot be reused.
      if (!req.complete) out.push('Connection', 'close');
      try {
        res.writeHead(status, incoming.statusMessage, out);
      } catch {
        upstream.destroy();
        engine.refuseNow(req, res, tx, head, refuse.upstreamError(req.url!.slice(1)), 'upstream_error');
        return;
      }
      relayResponse(incoming, res, tx, (endReply) => end('forwarded', status, '', endReply));
      incoming.on('close', () => {
        // Provider broke the connection mid-response: break the consumer's too, never a clean short reply.
        if (!incoming.complete && tx.outcome === 'in_flight') {
          res.destroy();
          const failure = classifyUpstreamFailure(undefined, timedOut);
          tx.failureReason = failure.reason === 'UNKNOWN' ? 'ECONNRESET' : failure.reason;
          end(failure.outcome, status, timedOut ? 'UPSTREAM_TIMEOUT' : 'ERROR_COMMUNICATING_TO_ENDPOINT');
        }
      });
    });

    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (tx.outcome !== 'in_flight') return;
      const failure = classifyUpstreamFailure(err, timedOut);
      const refusal = failure.status === 504 ? refuse.upstreamTimeout(this.options.timeoutMs) : refuse.upstreamError(req.url!.slice(1));
      tx.failureReason = failure.reason;
      if (proxyRes === null && !res.headersSent) {
        tx.responseBytes = this.writeRefusal(res, refusal, head.accept, !req.complete);
        end(failure.outcome, refusal.status, refusal.code);
      } else {
        res.destroy();
        end(failure.outcome, res.statusCode, refusal.code);
      }
    });

    if (head.hasBody) {
      const maxBody = this.options.maxBodyBytes;
      req.on('data', (chunk: Buffer) => {
        tx.requestBytes += chunk.length;
        if (tx.requestBytes > maxBody && tx.outcome === 'in_flight') {
          req.unpipe(upstream);
          upstream.destroy();
          if (!res.headersSent) {
            const refusal = refuse.bodyTooLarge(maxBody);
            tx.responseBytes = this.writeRefusal(res, refusal, head.accept, true);
            end('denied', refusal.status, refusal.code);
          } else {
            res.destroy();
            end('denied', res.statusCode, 'REQUEST_BODY_TOO_LARGE');
          }
        }
      });
    }

    // 'close' follows 'finish' on a response that completed, and comes alone when the consumer went away.
    res.on('close', () => {
      if (res.writableFinished) {
        // The reply went out while the consumer was still uploading: stop relaying the rest.
        if (!req.complete) upstream.destroy();
      } else {
        // The consumer went away (or its connection was refused mid-request): abort the provider request too.
        upstream.destroy();
        if (tx.outcome === 'in_flight') end('client_aborted', proxyRes === null ? 499 : res.statusCode, 'CLIENT_ABORTED');
      }
    });

    // A request without a body needs no pipe (and its half-dozen listeners): end it now.
    if (head.hasBody) req.pipe(upstream);
    else upstream.end();
  }

  /** A refusal after routing (the request could not be built or its reply could not be relayed). */
  private refuseNow(req: IncomingMessage, res: ServerResponse, tx: Transaction, head: RequestHead, refusal: Refusal, outcome: Transaction['outcome']): void {
    tx.responseBytes = this.writeRefusal(res, refusal, head.accept, !req.complete);
    if (tx.finish(outcome, refusal.status, refusal.code)) this.done(tx);
  }

  /** Frees pooled provider sockets (at shutdown). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

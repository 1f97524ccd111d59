import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import {
  classifyUpstreamFailure,
  ERROR_CODES,
  refuse,
  UNEXPECTED_1XX,
  INVALID_RESPONSE_HEAD,
  UNSUPPORTED_TRANSFER_CODING,
  type ErrorCode,
  type Refusal,
} from '../errors';
import type { Route } from '../route';
import type { Outcome, Transaction } from '../transaction';
import type { RequestHead } from '../validate';
import { headersForConsumer, type ResponseFraming } from './hop-by-hop';

/** What every exchange shares: settings, the refusal writer and where finished transactions go. */
export interface ExchangeContext {
  readonly timeoutMs: number;
  readonly clientIdleMs: number;
  readonly maxBodyBytes: number;
  readonly secureContext: SecureContext;
  writeRefusal(res: ServerResponse, refusal: Refusal, accept: string | undefined, closeConnection: boolean): number;
  done(tx: Transaction, then?: () => void): void;
}

/** Marks the error the inactivity timer raises, so it is told apart from the provider's own failures. */
class UpstreamTimeout extends Error {
  readonly code = 'ETIMEDOUT';
}

/** Errors a reused pooled socket gives when the provider had closed it as the gateway picked it (see canRetry). */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** More 100 Continue responses than any provider needs to send for one request (a flood is a fault). */
const MAX_INTERIM = 16;

/** Flushes the response head once the turn's data (if any) has gone out with it: headers are never held back. */
function flushHead(ex: Exchange): void {
  if (ex.tx.outcome !== 'in_flight' || ex.flushed || ex.held !== null) return;
  if (!ex.headWritten && !ex.writeHead()) return;
  ex.flushed = true;
  ex.res.flushHeaders();
}

/**
 * One consumer request, from the moment the gateway has read its head: it holds the
 * request's Transaction and is the one place that ends it (`end`), whether the gateway
 * refuses the request or relays it to its provider and the response back (`start`).
 *
 * Byte for byte, no body parser, no buffering; backpressure both ways (pipe() up, the
 * relay below down). Three rules keep a misbehaving party from hurting anyone else:
 * - A message leaves with the framing it arrived with (hop-by-hop.ts).
 * - Nothing a provider sends ends the process or reaches the consumer unless it can be
 *   relayed as it is: a 1xx other than 100, a head Node will not write, or a transfer
 *   coding the consumer cannot be told about is a 502, and that provider socket is closed.
 * - Each party is timed on its own: the provider's inactivity timer (UPSTREAM_TIMEOUT_MS)
 *   only blames the provider while the gateway waits on it, and the consumer's idle timer
 *   (CLIENT_IDLE_TIMEOUT_MS) only blames the consumer while the gateway waits on it (an
 *   upload that stalled, a download it does not read). A timer that fires while the other
 *   party is the one being waited on is re-armed instead.
 *
 * The final audit record is written before the reply completes for the consumer: the
 * bytes that complete it (the chunk that reaches the Content-Length, or the chunked
 * terminator that res.end() writes) wait for the record; headers and earlier data never do.
 */
export class Exchange implements ResponseFraming {
  upstream: ClientRequest | null = null;
  incoming: IncomingMessage | null = null;
  contentLength = -1;
  transferCoded = false;
  chunked = false;
  /** The consumer's reply ends with the close of its connection (so a cut must be a reset: breakReply). */
  private replyEndsWithClose = false;
  /** Body bytes relayed so far. */
  received = 0;
  /** The chunk that completes the response, held until its final record is written. */
  held: Buffer | null = null;
  /** res.writeHead() has run: from here on a failure can only break the connection. */
  headWritten = false;
  /** Response bytes have been handed to the consumer's socket. */
  flushed = false;
  status = 0;
  private out: string[] | null = null;
  /** The provider socket whose inactivity timer this exchange listens to. */
  private upstreamSocket: Socket | null = null;
  private readonly onUpstreamTimeout = (): void => this.onUpstreamIdle();
  private timedOut = false;
  private retried = false;
  /** 100 Continue responses the provider sent for this request. */
  private interim = 0;
  /** The consumer's download is paused: its socket buffer is full. */
  private consumerBlocked = false;
  /** Expect: 100-continue and no 100 relayed yet: the consumer is waiting on the provider. */
  private awaitingContinue: boolean;
  /** Set by `start`: the pool, the matched route and the request's header lines for the provider. */
  private agent!: Agent;
  private route!: Route;
  private headers!: string[];

  constructor(
    private readonly ctx: ExchangeContext,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly tx: Transaction,
    readonly head: RequestHead,
  ) {
    this.awaitingContinue = head.expectsContinue;
  }

  /** Relays the request to `route`'s provider through `agent`, with `headers` as its header lines. */
  start(agent: Agent, route: Route, headers: string[]): void {
    this.agent = agent;
    this.route = route;
    this.headers = headers;
    const { req, res, head } = this;
    if (!this.send(this.agent)) return;
    if (head.hasBody) {
      req.on('data', (chunk: Buffer) => this.onRequestData(chunk));
      req.pipe(this.upstream!);
    }
    // The consumer's idle timer: its socket's inactivity timeout, for this transaction
    // (Node sets the server's own timeouts again once the response is done).
    if (req.socket.timeout !== this.ctx.clientIdleMs) req.socket.setTimeout(this.ctx.clientIdleMs);
    res.on('timeout', () => this.onConsumerIdle());
    res.on('drain', () => {
      this.consumerBlocked = false;
      this.incoming?.resume();
    });
    // 'close' follows 'finish' on a response that completed, and comes alone when the consumer went away.
    res.on('close', () => {
      if (res.writableFinished) {
        // The reply went out while the consumer was still uploading: stop relaying the rest.
        if (!req.complete) this.upstream?.destroy();
      } else {
        // The consumer went away (or its connection was refused mid-request, which ended the
        // transaction already): abort the provider request too.
        this.upstream?.destroy();
        if (this.tx.outcome === 'in_flight') this.end('client_aborted', this.headWritten ? res.statusCode : 499, ERROR_CODES.CLIENT_ABORTED);
      }
    });
  }

  /** Builds and sends the provider request through `agent` (false: a connection of its own); false if Node refused to build it. */
  private send(agent: Agent | false): boolean {
    const { endpoint } = this.route;
    const tls = endpoint.protocol === 'https:';
    let upstream: ClientRequest;
    try {
      const options = {
        agent,
        host: endpoint.hostname,
        port: endpoint.port,
        servername: tls && isIP(endpoint.hostname) === 0 ? endpoint.hostname : undefined,
        method: this.tx.method,
        path: this.route.upstreamPath,
        headers: this.headers,
      };
      // A connection of its own (a retry) takes the TLS settings the pooled agent has.
      if (tls && agent === false) Object.assign(options, { secureContext: this.ctx.secureContext, rejectUnauthorized: true, minVersion: 'TLSv1.2' });
      upstream = (tls ? httpsRequest : httpRequest)(options);
    } catch {
      // Node refused to build the request (a header it will not send): nothing left the gateway.
      this.end('upstream_error', refuse.upstreamError(this.target()), !this.req.complete);
      return false;
    }
    this.upstream = upstream;
    // Every header line of the provider's head is relayed, or none is: Node's default keeps
    // the first 1,000 or so and silently drops the rest (the head stays bounded by Node's
    // 16 KiB header size limit, past which the response is a 502).
    upstream.maxHeadersCount = 0;
    const tx = this.tx;
    if (this.head.expectsContinue) {
      // Relayed once: writeContinue() ignores backpressure, so a provider repeating 100
      // would pile its flood up in the memory of a consumer socket that is not read.
      upstream.once('continue', () => {
        this.awaitingContinue = false;
        this.res.writeContinue();
      });
    }
    upstream.on('information', (info: { statusCode: number }) => {
      if (upstream !== this.upstream) return;
      // 100 is relayed above; any other 1xx is not GP Connect, and not relayed. A provider
      // that keeps sending 100s instead of an answer is out of step too.
      if (info.statusCode !== 100 || ++this.interim > MAX_INTERIM) this.providerFault(UNEXPECTED_1XX);
    });
    // A 101 with Upgrade headers: Node hands the socket over here (without a listener it
    // destroys it and the exchange hangs). GP Connect has no upgrades.
    upstream.on('upgrade', (_res: IncomingMessage, socket: Socket) => {
      socket.destroy();
      if (upstream === this.upstream) this.providerFault(UNEXPECTED_1XX);
    });
    upstream.once('socket', (socket: Socket) => {
      // Unhooks the guard that destroys an idle pooled socket which receives a byte (ProxyEngine).
      socket.removeListener('data', strayData);
      if (upstream !== this.upstream) return;
      // The provider's inactivity timer, on the socket itself and from the connection
      // attempt on (ClientRequest.setTimeout starts only once connected, and forwards
      // just the first timeout, so a timer re-armed after a fire that was not the
      // provider's fault would never be heard again).
      this.upstreamSocket = socket;
      socket.setTimeout(this.ctx.timeoutMs);
      socket.on('timeout', this.onUpstreamTimeout);
      if (!socket.connecting)
        tx.upstreamConnectMs = 0; // a pooled keep-alive socket
      else socket.once(this.route.endpoint.protocol === 'https:' ? 'secureConnect' : 'connect', () => (tx.upstreamConnectMs = tx.elapsedMs()));
    });
    upstream.on('response', (incoming: IncomingMessage) => {
      if (upstream === this.upstream) this.onResponse(incoming);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (upstream === this.upstream) this.onUpstreamError(err);
    });
    // A request without a body needs no pipe (and its half-dozen listeners): end it now.
    if (!this.head.hasBody) upstream.end();
    return true;
  }

  private target(): string {
    return this.req.url!.slice(1);
  }

  private onRequestData(chunk: Buffer): void {
    const { tx } = this;
    this.awaitingContinue = false;
    tx.requestBytes += chunk.length;
    if (tx.requestBytes > this.ctx.maxBodyBytes && tx.outcome === 'in_flight') {
      this.req.unpipe(this.upstream!);
      this.upstream!.destroy();
      this.end('denied', refuse.bodyTooLarge(this.ctx.maxBodyBytes), true);
    }
  }

  private onResponse(incoming: IncomingMessage): void {
    const tx = this.tx;
    this.incoming = incoming;
    tx.upstreamTtfbMs = tx.elapsedMs();
    const status = incoming.statusCode ?? 0;
    this.status = status;
    // A 101 without Upgrade headers reaches here as a response: not relayed either.
    if (status < 200) return this.providerFault(status >= 100 ? UNEXPECTED_1XX : INVALID_RESPONSE_HEAD);
    const consumerHttp10 = this.req.httpVersionMinor === 0 && this.req.httpVersionMajor === 1;
    const out = headersForConsumer(incoming.rawHeaders, this, consumerHttp10);
    if (out === null) return this.providerFault(UNSUPPORTED_TRANSFER_CODING);
    // An HTTP/1.0 message with Transfer-Encoding has faulty framing (RFC 9112 6.1): relay
    // it as read, but close that provider connection after it, never reuse it.
    if (this.transferCoded && incoming.httpVersionMinor === 0 && incoming.httpVersionMajor === 1) this.upstream!.shouldKeepAlive = false;
    // A body that ends with the provider's close (no Content-Length, not chunked) ends
    // with a close for the consumer too. Node cannot tell a clean close from a cut one
    // (a crash; a TLS connection closed without close_notify): chunking that body would
    // certify to the consumer, with a terminator the provider never sent, that it is whole.
    // A failure after that is a reset, not a close (breakReply).
    const hasBody = this.tx.method !== 'HEAD' && status !== 204 && status !== 304;
    const closeDelimited = this.contentLength === -1 && !this.chunked && hasBody;
    if (closeDelimited) this.res.useChunkedEncodingByDefault = false;
    // An HTTP/1.0 consumer has no chunked framing: without a Content-Length its reply ends with the close too.
    this.replyEndsWithClose = closeDelimited || (this.contentLength === -1 && hasBody && consumerHttp10);
    // The consumer is still uploading but the provider has answered: this connection cannot be reused.
    if (closeDelimited || !this.req.complete) out.push('Connection', 'close');
    // Nor can the provider's: it answered before the whole request reached it (an early
    // 401 or 413), so it may never read the rest, or read it as the start of the next
    // request, which another consumer's request would then be glued to. Node closes
    // the socket once this response ends.
    if (!this.upstream!.writableFinished) this.upstream!.shouldKeepAlive = false;
    this.out = out;
    incoming.on('data', (chunk: Buffer) => this.onResponseData(chunk));
    incoming.on('end', () => this.onResponseEnd());
    incoming.on('close', () => {
      // Provider broke the connection mid-response: never a clean short reply.
      if (!incoming.complete && tx.outcome === 'in_flight') this.onUpstreamError(undefined);
    });
    // A body follows: send the head now (with the first data if it came in this turn).
    // A response without one is complete with its head, so the head waits for the record.
    const bodiless = this.tx.method === 'HEAD' || status === 204 || status === 304 || this.contentLength === 0;
    if (!bodiless) process.nextTick(flushHead, this);
  }

  /** Writes the provider's head for the consumer (not yet sent); false, with a 502 given, if Node will not write it. */
  writeHead(): boolean {
    const res = this.res;
    try {
      res.writeHead(this.status, this.incoming!.statusMessage, this.out!);
    } catch {
      // A reason phrase, name or value Node will not write (a control character, ...).
      // writeHead stored the bad reason phrase before it threw: clear it for the refusal.
      res.statusMessage = '';
      this.providerFault(INVALID_RESPONSE_HEAD);
      return false;
    }
    this.headWritten = true;
    return true;
  }

  private onResponseData(chunk: Buffer): void {
    if (!this.headWritten && !this.writeHead()) return;
    this.received += chunk.length;
    // The chunk that completes a Content-Length body, or any chunk once the provider's
    // whole response is in, waits for the final record (an earlier held one goes now).
    if (this.received === this.contentLength || this.incoming!.complete) {
      const previous = this.held;
      this.held = chunk;
      if (previous === null) return;
      chunk = previous;
    }
    this.tx.responseBytes += chunk.length;
    this.flushed = true;
    if (!this.res.write(chunk)) {
      this.consumerBlocked = true;
      this.incoming!.pause();
    }
  }

  private onResponseEnd(): void {
    if (this.tx.outcome !== 'in_flight') return;
    if (!this.headWritten && !this.writeHead()) return;
    if (this.held !== null) this.tx.responseBytes += this.held.length;
    this.end('forwarded', this.status, '', () => this.endReply());
  }

  private endReply(): void {
    const held = this.held;
    this.held = null;
    if (held === null) this.res.end();
    else this.res.end(held);
  }

  /** The provider's inactivity timer fired: blame it only if the gateway is waiting on the provider. */
  private onUpstreamIdle(): void {
    if (this.tx.outcome !== 'in_flight') return;
    const upstream = this.upstream!;
    const waitingOnProvider =
      this.incoming !== null
        ? !this.consumerBlocked // mid-response: unless we paused it for a consumer that does not read
        : // the whole request is sent, the provider is not reading it, or a 100 Continue it was asked for has not come
          !this.head.hasBody || this.req.complete || upstream.writableNeedDrain || this.awaitingContinue;
    if (!waitingOnProvider) {
      this.upstreamSocket?.setTimeout(this.ctx.timeoutMs);
      return;
    }
    this.timedOut = true;
    upstream.destroy(new UpstreamTimeout('provider timed out'));
  }

  /** The consumer's socket was idle for CLIENT_IDLE_TIMEOUT_MS: blame it only if the gateway is waiting on the consumer. */
  private onConsumerIdle(): void {
    const { tx, req } = this;
    if (tx.outcome !== 'in_flight') {
      // The record is written but the consumer has not read the reply's tail: let the connection go.
      if (!this.res.writableFinished) this.breakReply();
      return;
    }
    const stalledUpload = this.head.hasBody && !req.complete && !this.awaitingContinue && !(this.upstream?.writableNeedDrain ?? false);
    if (!stalledUpload && !this.consumerBlocked) {
      req.socket.setTimeout(this.ctx.clientIdleMs);
      return;
    }
    this.upstream?.destroy();
    this.end('client_timeout', refuse.clientTimeout(this.ctx.clientIdleMs), true);
  }

  private onUpstreamError(err: NodeJS.ErrnoException | undefined): void {
    const { tx, incoming } = this;
    if (tx.outcome !== 'in_flight') return;
    if (incoming !== null && incoming.complete) {
      // The response is whole and is relayed; the error is about bytes after it (junk,
      // a body on a HEAD/204/304). Node has closed that socket; note why.
      tx.failureReason = classifyUpstreamFailure(err, false).reason;
      return;
    }
    if (this.canRetry(err)) {
      this.retried = true;
      tx.upstreamConnectMs = -1;
      this.releaseSocket();
      this.send(false);
      return;
    }
    const failure = classifyUpstreamFailure(err, this.timedOut);
    tx.failureReason = failure.reason;
    const refusal = failure.code === ERROR_CODES.UPSTREAM_TIMEOUT ? refuse.upstreamTimeout(this.ctx.timeoutMs) : refuse.upstreamError(this.target());
    this.upstream?.destroy();
    this.end(failure.outcome, refusal, !this.req.complete);
  }

  /**
   * A stale keep-alive socket: the provider closed a pooled connection just as the
   * gateway reused it. Sent again once, on a connection of its own, only on that race's
   * signature: a *reused* socket reset or closed before any response byte. A provider
   * that did read the request and then reset the connection looks the same from here,
   * so only requests that are safe to send twice qualify (RFC 9110 9.2.2): GET or HEAD,
   * without a body. Nothing with a body is ever sent twice.
   */
  private canRetry(err: NodeJS.ErrnoException | undefined): boolean {
    const method = this.tx.method;
    return (
      !this.retried &&
      (method === 'GET' || method === 'HEAD') &&
      err !== undefined &&
      this.incoming === null &&
      !this.head.hasBody &&
      this.upstream!.reusedSocket &&
      STALE_SOCKET_CODES.has(err.code ?? '') &&
      !this.timedOut &&
      !this.res.destroyed
    );
  }

  /** A provider that sent something the gateway will not relay: 502, its socket closed, the consumer's connection closed. */
  private providerFault(reason: string): void {
    if (this.tx.outcome !== 'in_flight') return;
    this.tx.failureReason = reason;
    this.upstream?.destroy();
    this.incoming?.destroy();
    this.end('upstream_error', refuse.upstreamError(this.target()), true);
  }

  /**
   * The one end of a transaction: hands it to audit, the log and the metrics exactly once
   * (`Transaction.finish`: the first end wins, a later one changes nothing).
   * - With a refusal (the gateway's own answer, its code the record's code): written, with
   *   `Connection: close` if `closeConnection`, when no byte of a provider's response has
   *   been written; otherwise the consumer's connection is broken, and the record keeps
   *   the status the consumer was sent.
   * - With a status and a code: nothing is written. The provider's reply is complete
   *   (`forwarded`; `then` writes its last bytes once the final record is written), the
   *   consumer has gone (`client_aborted`), or its connection's parser failed and the
   *   gateway answers on the raw socket (client-error-handler.ts).
   */
  end(outcome: Outcome, refusal: Refusal, closeConnection: boolean): void;
  end(outcome: Outcome, status: number, code: ErrorCode, then?: () => void): void;
  end(outcome: Outcome, answer: Refusal | number, codeOrClose: ErrorCode | boolean, then?: () => void): void {
    let status: number;
    let code: ErrorCode;
    if (typeof answer === 'number') {
      status = answer;
      code = codeOrClose as ErrorCode;
    } else {
      code = answer.code;
      if (this.headWritten) {
        this.breakReply();
        status = this.res.statusCode;
      } else {
        status = this.writeRefusal(answer, codeOrClose as boolean);
      }
    }
    this.releaseSocket();
    if (this.tx.finish(outcome, status, code)) this.ctx.done(this.tx, then);
    else then?.();
  }

  /**
   * Breaks the consumer's connection in the middle of a reply. A reply whose body ends
   * with the close (the provider's own framing, or an HTTP/1.0 consumer's only one) is
   * broken with a reset (TCP RST), so the cut is never read as the end of the body; over
   * TLS the connection ends without close_notify, which a TLS client can tell from an end.
   */
  private breakReply(): void {
    const socket = this.res.socket;
    if (this.replyEndsWithClose && socket !== null && !(socket as Socket & { encrypted?: boolean }).encrypted) {
      try {
        socket.resetAndDestroy();
      } catch {
        // Not a TCP handle: the destroy below still breaks the connection.
      }
    }
    this.res.destroy();
  }

  /** Writes the gateway's refusal as the response; returns the status sent (0 if even that could not be written). */
  private writeRefusal(refusal: Refusal, closeConnection: boolean): number {
    try {
      this.tx.responseBytes = this.ctx.writeRefusal(this.res, refusal, this.head.accept, closeConnection);
      return refusal.status;
    } catch {
      // Nothing a peer sent may end the process: if even the refusal cannot be written,
      // break the connection, and record that the consumer got no status.
      this.res.destroy();
      this.tx.responseBytes = 0;
      return 0;
    }
  }

  /** Stops listening to the provider socket's timer: a pooled socket outlives its exchange (the agent sets its idle timeout again). */
  private releaseSocket(): void {
    const socket = this.upstreamSocket;
    if (socket === null) return;
    this.upstreamSocket = null;
    socket.removeListener('timeout', this.onUpstreamTimeout);
  }
}

/** On an idle pooled provider socket, any byte is a response nobody asked for: that socket is never reused. */
export function strayData(this: Socket): void {
  this.destroy();
}

import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Refusal } from '../errors';
import type { Route } from '../route';
import type { Transaction } from '../transaction';
import type { RequestHead } from '../validate';
import { Exchange, strayData, type ExchangeContext } from './exchange';
import { connectionTokens, forwardedValue, headersForProvider } from './hop-by-hop';

export interface ProxyEngineOptions {
  /** Provider inactivity timeout (UPSTREAM_TIMEOUT_MS): runs only while the gateway waits on the provider. */
  timeoutMs: number;
  /** Consumer idle timeout (CLIENT_IDLE_TIMEOUT_MS): a stalled upload, or a download not read. */
  clientIdleMs: number;
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

/**
 * Hands a finished transaction on (audit, metrics, log). `then`, when given, runs once
 * its final record is in the audit file: the proxy ends a completed reply there.
 */
export type TransactionDone = (tx: Transaction, then?: () => void) => void;

/** A pooled socket goes idle: any byte it receives from now on was never asked for. */
function guardIdle(socket: Socket): void {
  if (!socket.destroyed) socket.on('data', strayData);
}

/**
 * Streams a consumer's request to the provider and the provider's response back (one
 * Exchange per transaction, exchange.ts). Connects only to the route's registered
 * endpoint. Keep-alive agents are built once and bounded per provider host; a pooled
 * socket that receives a byte while idle (a provider out of step) is destroyed, never
 * handed to the next request.
 */
export class ProxyEngine {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private readonly context: ExchangeContext;

  constructor(
    private readonly options: ProxyEngineOptions,
    writeRefusal: RefusalWriter,
    done: TransactionDone,
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
    const secureContext: SecureContext = createSecureContext({ ...options.upstreamTls, minVersion: 'TLSv1.2' });
    this.httpsAgent = new HttpsAgent({ ...agentOptions, secureContext, rejectUnauthorized: true });
    // Registered after the agents' own 'free' handlers, so they have pooled the socket (or handed it on) first.
    this.httpAgent.on('free', guardIdle);
    this.httpsAgent.on('free', guardIdle);
    this.context = {
      timeoutMs: options.timeoutMs,
      clientIdleMs: options.clientIdleMs,
      maxBodyBytes: options.maxBodyBytes,
      secureContext,
      writeRefusal,
      done,
    };
  }

  /**
   * The request's one object (exchange.ts): holds its transaction, and ends it whether it
   * is refused (`end` with the refusal) or forwarded (`forward`).
   */
  open(req: IncomingMessage, res: ServerResponse, tx: Transaction, head: RequestHead): Exchange {
    return new Exchange(this.context, req, res, tx, head);
  }

  /** Relays `exchange`'s request to `route`'s provider, and the response back. */
  forward(exchange: Exchange, route: Route): void {
    const { req, tx, head } = exchange;
    tx.forwardedMs = tx.elapsedMs();
    const headers = headersForProvider(
      req.rawHeaders,
      connectionTokens(head.connection),
      route.endpoint.hostHeader,
      this.options.forwardedHeader ? forwardedValue(tx.clientIp, this.options.consumerTls) : null,
    );
    const agent = route.endpoint.protocol === 'https:' ? this.httpsAgent : this.httpAgent;
    exchange.start(agent, route, headers);
  }

  /** Frees pooled provider sockets (at shutdown). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

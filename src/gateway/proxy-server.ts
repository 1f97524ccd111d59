import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { Settings } from '../config';
import type { GatewayMetrics } from '../metrics';
import type { TransactionDone } from '../proxy';
import { notePeer, refuseRenegotiation } from '../tls';
import type { Transaction } from '../transaction';
import { createClientErrorHandler } from './client-error-handler';
import { ConsumerConnections, defaultMaxConnections, openFilesLimit } from './connections';
import { closeIfNoRequestWithin, waitForTurn } from './connection-state';
import { createUpgradeRefuser } from './upgrade-handler';

/**
 * No whole-request deadline (Node's requestTimeout): large document migrations may upload
 * for minutes. The head is bounded by HEADERS_TIMEOUT_MS, and a stalled body by the
 * consumer's idle timer (CLIENT_IDLE_TIMEOUT_MS) and the socket's inactivity timeout.
 */
const NO_REQUEST_DEADLINE = 0;

/**
 * How often Node looks for header blocks past their deadline: a quarter of
 * HEADERS_TIMEOUT_MS, so a late head is cut within 25% of its deadline, but never more
 * often than every 100 ms (the sweep walks every connection) nor less often than Node's
 * own default of 30 s.
 */
const HEADER_SWEEP_MIN_MS = 100;
const HEADER_SWEEP_MAX_MS = 30_000;

/**
 * The consumer socket's inactivity timeout (server.timeout) between transactions and
 * while the gateway waits on the provider. At least Node's former default of 120 s, and
 * always longer than UPSTREAM_TIMEOUT_MS by this margin, so a slow provider is answered
 * 504 by the provider's own timer before the consumer's socket is ever closed under it.
 */
const SOCKET_IDLE_FLOOR_MS = 120_000;
const SOCKET_IDLE_MARGIN_OVER_UPSTREAM_MS = 10_000;

/**
 * How often shutdown looks whether transactions are still in flight. Polled, not woken by
 * the last `done`: a transaction is counted out when its final record is handed on, and
 * the reply's last bytes are written only once that record is written, so closing every
 * connection at that instant could cut the reply it was waiting for.
 */
const DRAIN_POLL_MS = 20;

export type ProxyServerSettings = Pick<
  Settings,
  'MAX_HEADER_BYTES' | 'MAX_HEADER_LINES' | 'HEADERS_TIMEOUT_MS' | 'UPSTREAM_TIMEOUT_MS' | 'MAX_CONNECTIONS' | 'MAX_CONNECTION_AGE_MS' | 'ALLOWED_METHODS'
>;

export interface ProxyServerOptions {
  settings: ProxyServerSettings;
  /** The consumer port's TLS options, or null for plain HTTP. */
  consumerTls: HttpsServerOptions | null;
  /** Headers the gateway adds to its own refusals. */
  ownHeaders: readonly string[];
  /** Whether refused upgrades decode the consumer's JWT for their record (audit is on). */
  decodeClaims: boolean;
  /** Hands on a finished transaction (audit, metrics, log). */
  record: TransactionDone;
  metrics: GatewayMetrics;
}

/**
 * The proxy port's server: creates and configures it (limits, timeouts, TLS hooks, the
 * parser's and upgrades' refusals), counts the transactions in flight on it, and drains
 * them at shutdown. Requests go to the handler given to `serve`.
 */
export class ProxyServer {
  readonly server: Server;
  readonly connections: ConsumerConnections;
  readonly openFiles: number | null;
  readonly maxConnections: number | null;
  /**
   * Where the request path hands a finished transaction it counted in: counts it out of
   * in flight, then records it. Bound once, so handing it around allocates nothing.
   */
  readonly done: TransactionDone = (tx: Transaction, then?: () => void): void => {
    this.inFlightCount--;
    this.options.record(tx, then);
  };
  private inFlightCount = 0;

  constructor(private readonly options: ProxyServerOptions) {
    const { settings, consumerTls, metrics } = options;
    const serverOptions = {
      maxHeaderSize: settings.MAX_HEADER_BYTES,
      requestTimeout: NO_REQUEST_DEADLINE,
      headersTimeout: settings.HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(HEADER_SWEEP_MAX_MS, Math.max(HEADER_SWEEP_MIN_MS, Math.floor(settings.HEADERS_TIMEOUT_MS / 4))),
      // An HTTP/1.1 request without Host is refused by the handler, with an OperationOutcome and a record.
      requireHostHeader: false,
    };
    // A TLS handshake gets the same time as a header block (Node's default is 120 s): a
    // connection that never handshakes holds a MAX_CONNECTIONS slot no longer than that.
    const server: Server = consumerTls
      ? createHttpsServer({ ...serverOptions, ...consumerTls, handshakeTimeout: settings.HEADERS_TIMEOUT_MS })
      : createHttpServer(serverOptions);
    this.server = server;
    // One line more than the limit reaches the handler, which refuses it (Node would drop lines past its cap silently).
    server.maxHeadersCount = settings.MAX_HEADER_LINES + 1;
    this.openFiles = openFilesLimit();
    this.maxConnections = settings.MAX_CONNECTIONS ?? defaultMaxConnections(this.openFiles);
    if (this.maxConnections !== null) server.maxConnections = this.maxConnections;
    // Over the cap, Node closes a new connection at once and says so.
    server.on('drop', () => metrics.connectionsRejected.inc());
    this.connections = new ConsumerConnections((reason, count) => metrics.connectionsRetired.inc({ reason }, count));
    server.on(consumerTls ? 'secureConnection' : 'connection', (socket) => this.connections.add(socket));
    if (consumerTls) {
      server.on('secureConnection', notePeer);
      server.on('secureConnection', refuseRenegotiation);
    }
    server.timeout = Math.max(SOCKET_IDLE_FLOOR_MS, settings.UPSTREAM_TIMEOUT_MS + SOCKET_IDLE_MARGIN_OVER_UPSTREAM_MS);
    metrics.countInFlight(() => this.inFlightCount);
  }

  /** Transactions counted in and not yet done. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Hands the port's requests to `handle`; the parser's errors and upgrades are refused here. */
  serve(handle: (req: IncomingMessage, res: ServerResponse) => void): void {
    const { server, options } = this;
    const { settings } = options;
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      // A pipelined request waits until the one before it on its connection has been answered.
      if (waitForTurn(req, res, onRequest)) return;
      // Empty lines after this response cannot keep the connection open for ever.
      closeIfNoRequestWithin(res, server.keepAliveTimeout + settings.HEADERS_TIMEOUT_MS);
      this.inFlightCount++;
      handle(req, res);
    };
    server.on('request', onRequest);
    // Validate before "100 Continue", so a refused upload is never sent.
    server.on('checkContinue', onRequest);
    // An Expect other than 100-continue: the handler refuses it with an OperationOutcome and
    // a record (without a listener Node writes a bare 417 and no record is made).
    server.on('checkExpectation', onRequest);
    server.on(
      'clientError',
      createClientErrorHandler({
        ownHeaders: options.ownHeaders,
        maxHeaderBytes: settings.MAX_HEADER_BYTES,
        headersTimeoutMs: settings.HEADERS_TIMEOUT_MS,
        record: options.record,
      }),
    );
    const refuseUpgrade = createUpgradeRefuser(options.ownHeaders, settings.ALLOWED_METHODS, options.decodeClaims, options.record);
    server.on('upgrade', refuseUpgrade);
    server.on('connect', refuseUpgrade);
  }

  /** Starts closing connections older than MAX_CONNECTION_AGE_MS. */
  startAgeLimit(): void {
    this.connections.startAgeLimit(this.options.settings.MAX_CONNECTION_AGE_MS);
  }

  /** Stops accepting connections and closes the idle ones; busy ones finish their transaction. */
  stopAccepting(): void {
    this.connections.stop();
    this.server.close();
    this.server.closeIdleConnections();
  }

  /** Resolves once no transaction is in flight, or at `graceMs`, with how many are still in flight. */
  async drain(graceMs: number): Promise<number> {
    const deadline = Date.now() + graceMs;
    while (this.inFlightCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    return this.inFlightCount;
  }

  /** Closes every connection, busy or not. */
  closeAll(): void {
    this.server.closeAllConnections();
  }
}

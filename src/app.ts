import { createServer as createHttpServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { AdminTokens, adminBindAddress, auditStoreProxy, createAdminApp } from './admin';
import { buildAuditPipeline, type AuditPipeline, type AuditPipelineOptions } from './app-audit';
import type { Settings } from './config';
import { DirectoryStore, loadInteractionCatalogue, type DirectoryIndex, type RateLimit } from './directory';
import { RateLimiter } from './limit';
import { consumerSecureContext, consumerTlsServerOptions, peerStillPasses, trustSnapshot, upstreamTlsOptions } from './tls';
import { createProxyHandler, createRefusalWriter, ownResponseHeaders, ProxyServer, DESCRIPTOR_RESERVE } from './gateway';
import { createLogger, createTransactionLog, type Logger } from './log';
import { GatewayMetrics } from './metrics';
import { InteractionCheck } from './check';
import { ProxyEngine } from './proxy';
import type { Transaction } from './transaction';

export interface Gateway {
  readonly settings: Settings;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  readonly directory: DirectoryStore;
  /** The audit pipeline, or null when AUDIT_ENABLED=false. */
  readonly audit: AuditPipeline | null;
  /** Binds both ports; resolves with the ports actually bound (0 in settings picks a free one). */
  listen(): Promise<{ proxyPort: number; adminPort: number }>;
  /**
   * Re-reads the consumer port's certificate, key, client CA and CRL (SIGHUP): new
   * connections use them, established ones keep theirs. A bad file keeps the old ones.
   */
  reloadTls(): void;
  /** Stops accepting, lets in-flight transactions finish for up to SHUTDOWN_GRACE_MS, then closes everything. */
  shutdown(): Promise<void>;
}

/** How long an /audit request waits for a store that is starting (not for one that is down: 503 at once). */
const STORE_START_WAIT_MS = 15_000;

/** Buffered log lines reach stdout within this long. */
const LOG_FLUSH_MS = 250;

function allInteractions(catalogue: ReadonlySet<string>, index: DirectoryIndex): Set<string> {
  const ids = new Set(catalogue);
  for (const c of index.consumers.values()) for (const id of c.interactions) ids.add(id);
  for (const p of index.providers.values()) for (const id of p.endpointFor.keys()) ids.add(id);
  return ids;
}

/** The store process's state for /readyz: always ok, with a detail while it is down. */
function storeReadiness(audit: AuditPipeline): { ok: boolean; detail?: string } {
  const { state, restartInMs, restarts } = audit.storeState();
  if (state === 'down')
    return { ok: true, detail: `audit store process down, restarting in ${restartInMs} ms (restarts: ${restarts}); records wait in the spool` };
  return { ok: true, detail: `audit store process ${state}` };
}

/** A default rate limit from settings: per second, with a burst of one second's worth unless set. */
function defaultLimit(perSecond: number | undefined, burst: number | undefined): RateLimit | null {
  return perSecond === undefined ? null : { perSecond, burst: burst ?? Math.max(1, Math.ceil(perSecond)) };
}

/**
 * The composition root: builds every part once and wires the flow
 * consumer → gateway (validate, route, audit begin) → proxy → provider, with the
 * transaction handed to audit, logs and metrics when it ends.
 * Throws ConfigError/DirectoryError on a bad start.
 */
export async function buildGateway(settings: Settings, log: Logger = createLogger(settings.LOG_LEVEL), options: AuditPipelineOptions = {}): Promise<Gateway> {
  // Files named by settings are read first: a bad one stops start-up before anything is opened.
  const tls = settings.TLS_CERT_FILE !== undefined;
  const consumerTls = tls ? consumerTlsServerOptions(settings) : null;
  const upstreamTls = upstreamTlsOptions(settings);
  const adminTokens = settings.ADMIN_TOKENS_FILE === undefined ? null : AdminTokens.load(settings.ADMIN_TOKENS_FILE);
  const adminBind = adminBindAddress(settings); // a non-loopback ADMIN_HOST without tokens stops here
  const metrics = new GatewayMetrics({ consumerLabel: settings.METRICS_CONSUMER_LABEL, defaultEnvironment: settings.ENVIRONMENT });
  const catalogue = loadInteractionCatalogue(settings.INTERACTIONS_FILE);
  const directory = new DirectoryStore(settings.DIRECTORY_FILE, catalogue, {
    loaded({ index, warnings }, trigger) {
      for (const w of warnings) log.warn(w);
      if (index.agreements === null) log.warn('directory has no agreements key: the data-sharing agreement (FoT) check is off');
      metrics.setKnownLabels({
        interactions: allInteractions(catalogue, index),
        providers: new Set(index.providers.keys()),
        consumers: new Set(index.consumers.keys()),
      });
      metrics.directoryEntries.set({ kind: 'consumers' }, index.consumers.size);
      metrics.directoryEntries.set({ kind: 'providers' }, index.providers.size);
      metrics.directoryEntries.set({ kind: 'endpoints' }, index.endpointCount);
      metrics.directoryReloads.inc({ result: 'success' });
      metrics.directoryLoadedAt.set(index.loadedAt / 1000);
      log.info({ trigger, consumers: index.consumers.size, providers: index.providers.size, endpoints: index.endpointCount }, 'directory loaded');
      log.flush();
    },
    failed(error, trigger) {
      metrics.directoryReloads.inc({ result: 'failure' });
      log.error({ trigger, code: (error as { code?: string }).code }, `directory reload failed, previous directory stays in force: ${error.message}`);
      log.flush();
    },
  });
  directory.loadInitial();

  const audit = settings.AUDIT_ENABLED ? await buildAuditPipeline(settings, log, metrics, options) : null;
  if (audit === null) log.warn('AUDIT_ENABLED=false: no audit records are kept (benchmarks and local trials only)');

  const ownHeaders = ownResponseHeaders(tls);
  const writeRefusal = createRefusalWriter(ownHeaders, settings.ALLOWED_METHODS);
  let logFlusher: NodeJS.Timeout | null = null;
  const logTransaction = createTransactionLog(log);

  const observeMetrics = settings.METRICS_ENABLED;
  if (!observeMetrics) log.warn('METRICS_ENABLED=false: no per-request metrics (benchmarks only)');
  function record(tx: Transaction, then?: () => void): void {
    if (audit === null) then?.();
    else audit.sink.finish(tx, then);
    if (observeMetrics) metrics.observe(tx);
    logTransaction(tx);
  }
  // The proxy port's server counts transactions in flight: the request path hands them to its `done`.
  const proxyServer = new ProxyServer({ settings, consumerTls, ownHeaders, decodeClaims: audit !== null, record, metrics });
  const proxiedDone = proxyServer.done;

  const engine = new ProxyEngine(
    {
      timeoutMs: settings.UPSTREAM_TIMEOUT_MS,
      clientIdleMs: settings.CLIENT_IDLE_TIMEOUT_MS,
      maxSockets: settings.UPSTREAM_MAX_SOCKETS,
      idleMs: settings.UPSTREAM_IDLE_MS,
      maxBodyBytes: settings.MAX_REQUEST_BODY_BYTES,
      forwardedHeader: settings.FORWARDED_HEADER,
      consumerTls: tls,
      upstreamTls,
    },
    writeRefusal,
    proxiedDone,
  );
  const handle = createProxyHandler({
    allowedMethods: settings.ALLOWED_METHODS,
    maxBodyBytes: settings.MAX_REQUEST_BODY_BYTES,
    directory,
    engine,
    audit: audit?.sink ?? null,
    auditFailOpen: settings.AUDIT_FAILURE_MODE === 'open',
    limiter: new RateLimiter({
      consumer: defaultLimit(settings.RATE_LIMIT_CONSUMER_PER_SECOND, settings.RATE_LIMIT_CONSUMER_BURST),
      provider: defaultLimit(settings.RATE_LIMIT_PROVIDER_PER_SECOND, settings.RATE_LIMIT_PROVIDER_BURST),
    }),
    maxHeaderLines: settings.MAX_HEADER_LINES,
    jwtCheck: settings.JWT_CHECK,
    interactionCheck: { mode: settings.INTERACTION_CHECK, check: new InteractionCheck(catalogue) },
    defaultEnvironment: settings.ENVIRONMENT,
    diagnose: settings.DIAGNOSE,
    ownHeaders,
  });
  proxyServer.serve(handle);

  if (adminTokens === null)
    log.warn(
      adminBind.warning ?? 'ADMIN_TOKENS_FILE is not set: /metrics and /audit/* on the admin port are open to anyone who can reach it (local trials only)',
    );
  // /audit/* is the store process's (README: Processes): piped to its Unix socket, 503 while it is down.
  // A store still starting (the engine loading, at start-up or after a restart) is waited for, up to 15 s.
  const storeProxy =
    audit === null
      ? null
      : auditStoreProxy(
          audit.storeSocket,
          () => {
            const { state, restartInMs, restarts } = audit.storeState();
            if (state === 'up') return { up: true };
            const detail =
              state === 'down'
                ? `the audit store process is down, restarting in ${restartInMs} ms (restarts: ${restarts})`
                : `the audit store process is ${state}`;
            return { up: false, detail };
          },
          { log },
        );
  const investigations: Parameters<typeof createAdminApp>[2] =
    storeProxy === null || audit === null ? null : (req, res, next) => void audit.whenServing(STORE_START_WAIT_MS).then(() => storeProxy(req, res, next));
  const adminApp = createAdminApp(
    metrics.registry,
    [
      { name: 'directory', check: () => ({ ok: directory.current !== null }) },
      { name: 'audit', check: () => (audit === null ? { ok: true } : audit.readiness()) },
      // Names the store process's state; never fails readiness: a store outage is like a ClickHouse outage (the spool decides).
      ...(audit === null ? [] : [{ name: 'audit_store', check: () => storeReadiness(audit) }]),
    ],
    investigations,
    { tokens: adminTokens, metricsOpen: settings.ADMIN_METRICS_OPEN },
  );
  const adminServer = createHttpServer(adminApp);

  function listenOn(server: Server, port: number, host = settings.HOST): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  return {
    settings,
    log,
    metrics,
    directory,
    audit,
    async listen() {
      const proxyPort = await listenOn(proxyServer.server, settings.PORT);
      const adminPort = await listenOn(adminServer, settings.ADMIN_PORT, adminBind.host);
      if (settings.DIRECTORY_WATCH) directory.watch();
      audit?.start();
      if (!tls) log.warn('PORT speaks plain HTTP: fine for local trials, never for live traffic (set TLS_CERT_FILE and TLS_KEY_FILE)');
      proxyServer.startAgeLimit();
      const { maxConnections, openFiles } = proxyServer;
      log.info(
        { maxConnections, openFilesLimit: openFiles, descriptorReserve: DESCRIPTOR_RESERVE, fromSetting: settings.MAX_CONNECTIONS !== undefined },
        maxConnections === null
          ? 'proxy port connection cap: none (the descriptor limit is unknown or unlimited; set MAX_CONNECTIONS)'
          : `proxy port connection cap: ${maxConnections}`,
      );
      log.info({ host: settings.HOST, adminHost: adminBind.host, proxyPort, adminPort, tls }, 'gateway listening');
      log.flush();
      // Log writes are batched (src/log/logger.ts): flush what is buffered at least this often.
      logFlusher = setInterval(() => log.flush(), LOG_FLUSH_MS);
      logFlusher.unref();
      return { proxyPort, adminPort };
    },
    reloadTls() {
      if (!tls) return;
      try {
        const context = consumerSecureContext(settings);
        (proxyServer.server as HttpsServer).setSecureContext(context);
        // Connections already open were admitted under the old CA bundle and CRL: those whose
        // certificate no longer passes (revoked, expired, CA gone) close once idle.
        let keep = (_socket: unknown): boolean => false; // files it cannot read: every connection handshakes again
        try {
          const trust = trustSnapshot(context.ca, context.crl);
          keep = (socket) => peerStillPasses(socket as TLSSocket, trust);
        } catch (err) {
          log.warn(`TLS reload: cannot re-check open connections (${(err as Error).message}); all of them close once idle`);
        }
        const retired = proxyServer.connections.retire(Date.now(), 'tls_reload', keep);
        log.info({ connectionsClosed: retired }, 'TLS certificate, key, client CA and CRL reloaded');
      } catch (err) {
        log.error({ code: (err as { code?: string }).code }, `TLS reload failed, the previous certificates stay in force: ${(err as Error).message}`);
      }
      log.flush();
    },
    async shutdown() {
      directory.close();
      proxyServer.stopAccepting();
      adminServer.close();
      const inFlight = await proxyServer.drain(settings.SHUTDOWN_GRACE_MS);
      if (inFlight > 0) log.warn({ inFlight }, 'shutdown grace period over: closing connections with transactions in flight');
      proxyServer.closeAll();
      adminServer.closeAllConnections();
      engine.close();
      await audit?.stop();
      log.info('gateway stopped');
      if (logFlusher) clearInterval(logFlusher);
      log.flush();
    },
  };
}

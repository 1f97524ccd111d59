import { createPublicKey } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AdminTokens } from '../admin';
import { AuditStore, type AuditStoreError } from '../clickhouse';
import type { Settings } from '../config';
import { createInvestigationsApp, drainAccessLog, serveOnSocket } from '../investigate';
import { fromWireWatermark, STORE_SOCKET, type Channel, type FromStore, type SealCall, type ToStore, type WirePosition } from '../ipc';
import type { Logger } from '../log';
import { loadVerifyKeys } from '../seal';
import { Shipper, type ShipperFileWork } from '../shipper';
import { SpoolQueue, type SpoolLink } from '../spool';
import { channelLogger } from './channel-logger';

/** How long the API waits for the schema before it is announced anyway (ClickHouse unreachable). */
const SERVE_UNPREPARED_MS = 10_000;

/** Stats for the gateway's metrics go this often (and with every shipped batch). */
const STATS_EVERY_MS = 500;

const SHIPPER_WORK: Record<ShipperFileWork, string> = {
  read: 'reading the spool',
  checkpoint: 'saving the checkpoint',
  delete: 'deleting a shipped segment',
  dead_letter: 'writing a dead-letter file',
  loop: 'the shipping loop (restarted)',
};

export interface StoreService {
  /** Resolves once the service has stopped (asked to, or its channel closed). */
  readonly stopped: Promise<void>;
  /** The AuditStore once init has come (the in-process seam hands it to tests). */
  readonly store: Promise<AuditStore>;
  /** Stops as `stop` does: the current batch finishes, the store closes. */
  stop(): Promise<void>;
}

/**
 * The audit store process's work (README: Processes): on `init`, reads the spool through a
 * SpoolLink fed by the gateway (durable end, room, the sealer's watermark), ships it into
 * ClickHouse (chDB embedded, or CLICKHOUSE_URL), answers the sealer's seal calls, and serves
 * the investigations API on DATA_DIR/store.sock. Stops on `stop` (after the current batch)
 * or when the channel closes (the gateway is gone: it never outlives it).
 */
export function runStoreService(channel: Channel<FromStore, ToStore>): StoreService {
  let stopping: Promise<void> | null = null;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let resolveStore!: (store: AuditStore) => void;
  const storeReady = new Promise<AuditStore>((r) => (resolveStore = r));
  let started: Promise<Started | null> | null = null;
  const send = (m: FromStore) => channel.send(m);

  interface Started {
    store: AuditStore;
    shipper: Shipper;
    server: { current: Server | null };
    app: ReturnType<typeof createInvestigationsApp>;
    log: Logger;
    statsTimer: NodeJS.Timeout;
  }

  // The link's state, as the gateway last told it.
  let durableEnd: WirePosition = { segment: 1, offset: 0 };
  let needsRoom = false;
  let retainFrom = Infinity;
  const link: SpoolLink = {
    get durableEnd() {
      return durableEnd;
    },
    get needsRoom() {
      return needsRoom;
    },
    released: (bytes) => void send({ t: 'released', bytes }),
    suspect: () => void send({ t: 'suspect' }),
  };

  async function start(settings: Settings, publicKeyPem: string): Promise<Started> {
    const log = channelLogger(channel, settings.LOG_LEVEL);
    // 'serving' (the gateway's /audit/* stops waiting) once the socket listens and the schema is
    // ready, so a search at start-up never meets half-applied migrations; or after
    // SERVE_UNPREPARED_MS with ClickHouse unreachable, when the API's own 503s say so.
    const announce = {
      socket: '',
      listening: false,
      prepared: false,
      sent: false,
      check() {
        if (this.sent || !this.listening || !this.prepared) return;
        this.sent = true;
        send({ t: 'serving', socket: this.socket });
      },
    };
    const unprepared = setTimeout(() => {
      announce.prepared = true;
      announce.check();
    }, SERVE_UNPREPARED_MS);
    unprepared.unref();
    const store = AuditStore.fromSettings(settings);
    resolveStore(store);
    const queue = new SpoolQueue(join(settings.DATA_DIR, 'spool'), link);
    queue.retain(() => retainFrom);
    const shipper: Shipper = new Shipper(
      {
        deadLetterDir: join(settings.DATA_DIR, 'dead-letter'),
        batchMaxRecords: settings.AUDIT_BATCH_MAX_RECORDS,
        batchMaxAgeMs: settings.AUDIT_BATCH_MAX_AGE_MS,
        minBackoffMs: 100,
        maxBackoffMs: 30_000,
      },
      queue,
      store,
      {
        ready(applied) {
          log.info({ store: store.kind, database: store.database, migrations_applied: applied }, 'audit store ready');
          send({ t: 'ready', applied });
          announce.prepared = true;
          announce.check();
        },
        shipped(records, seconds) {
          send({ t: 'shipped', records, seconds });
          sendStats();
        },
        failed(error, retryInMs) {
          log.warn({ code: error.code, retry_in_ms: Math.round(retryInMs) }, `audit store unavailable, backlog kept on disk: ${error.message}`);
          send({ t: 'failed', code: error.code, retryInMs });
        },
        deadLettered(records, file, error: AuditStoreError) {
          log.error({ code: error.code, records, file }, `audit batch dead-lettered (README: Dead letters): ${error.message}`);
          send({ t: 'deadLettered', records });
        },
        skippedBadBytes(bytes) {
          log.warn({ bad_bytes: bytes }, 'audit spool: corrupt tail of an older segment skipped');
          send({ t: 'skippedBadBytes', bytes });
        },
        fileFault(kind, error) {
          log.error(
            { code: error.code ?? 'EIO', work: kind },
            `audit shipper: ${SHIPPER_WORK[kind]} failed (${error.code ?? 'EIO'}), retrying; nothing is skipped: ${error.message}`,
          );
          send({ t: 'fileFault', kind, code: error.code ?? 'EIO' });
        },
        fileRecovered(kind) {
          log.warn({ work: kind }, `audit shipper: ${SHIPPER_WORK[kind]} works again`);
          send({ t: 'fileRecovered', kind });
        },
        unmatchedFinals(records) {
          log.error(
            { records, total: queue.unmatchedFinals },
            'audit shipper: final records whose begin record is not in the spool (a damaged or edited spool) stored with the fields they carry',
          );
          send({ t: 'unmatchedFinals', records });
        },
      },
    );
    const sendStats = () =>
      send({ t: 'stats', shipped: shipper.shippedRecords, deadLettered: shipper.deadLetteredRecords, oldestUnshippedAt: shipper.oldestUnshippedAt });
    const statsTimer = setInterval(sendStats, STATS_EVERY_MS);
    statsTimer.unref();
    shipper.start();

    const app = createInvestigationsApp(
      store,
      log,
      {
        tokens: settings.ADMIN_TOKENS_FILE === undefined ? null : AdminTokens.load(settings.ADMIN_TOKENS_FILE),
        auditPublicKey: createPublicKey(publicKeyPem),
        auditVerifyKeys: loadVerifyKeys(settings.AUDIT_VERIFY_KEYS_FILE),
      },
      {
        exportMaxRows: settings.AUDIT_EXPORT_MAX_ROWS,
        sqlMaxRows: settings.AUDIT_SQL_MAX_ROWS,
        sqlTimeoutMs: settings.AUDIT_SQL_TIMEOUT_MS,
        instance: hostname(),
      },
    );
    const socket = join(settings.DATA_DIR, STORE_SOCKET);
    const server: { current: Server | null } = { current: null };
    announce.socket = socket;
    // Shipping goes on without the API meanwhile (/audit/* answers 503); tried again each second.
    void (async () => {
      for (let attempt = 0; stopping === null; attempt++) {
        try {
          server.current = await serveOnSocket(app, socket);
          if (stopping !== null) server.current.close();
          else {
            announce.listening = true;
            announce.check();
          }
          return;
        } catch (err) {
          if (attempt === 0)
            log.error(
              { code: (err as NodeJS.ErrnoException).code ?? 'EIO', socket },
              `audit store: cannot serve the investigations API yet, retrying each second: ${(err as Error).message}`,
            );
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })();
    return { store, shipper, server, app, log, statsTimer };
  }

  async function answer(id: number, call: SealCall): Promise<void> {
    try {
      const s = await started;
      if (s === null || s === undefined) throw Object.assign(new Error('the audit store is not initialised'), { code: 'GW_ERR_STORE_DOWN' });
      const value = call.method === 'insertSeals' ? await s.store.insertSeals(call.seals) : await s.store.latestSealPeriod(call.chain);
      send({ t: 'reply', id, ok: true, value: value ?? null });
    } catch (err) {
      send({ t: 'reply', id, ok: false, code: String((err as { code?: unknown }).code ?? 'ERROR'), message: (err as Error).message });
    }
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      const s = await started?.catch(() => null);
      if (s) {
        clearInterval(s.statsTimer);
        s.server.current?.close();
        s.server.current?.closeAllConnections();
        await s.shipper.stop();
        await drainAccessLog(s.app, 2000).catch(() => {});
        await s.store.close().catch(() => {});
      }
      send({ t: 'stopped' });
      resolveStopped();
    })();
    return stopping;
  }

  channel.onMessage((m) => {
    switch (m.t) {
      case 'init':
        if (started !== null) return;
        // Lane 0's state (WORKERS=1). Lanes of WORKERS > 1 come in `lane` messages (not served yet).
        durableEnd = m.durableEnd ?? durableEnd;
        retainFrom = fromWireWatermark(m.retainFrom ?? null);
        needsRoom = m.needsRoom ?? false;
        started = start(m.settings, m.publicKeyPem);
        started.catch((err: unknown) => {
          // A bad CLICKHOUSE_URL database name, an unreadable tokens or verify-keys file: said in the
          // gateway's log, then this process ends (the supervisor tries again with its backoff).
          const code = String((err as { code?: unknown }).code ?? 'ERROR');
          const msg = `audit store cannot start (records wait in the spool): ${(err as Error).message}`;
          if (!send({ t: 'log', level: 'error', fields: { code }, msg })) process.stderr.write(`spine-gateway audit store: ${msg}\n`);
          void stop();
        });
        return;
      case 'durable':
        durableEnd = { segment: m.segment, offset: m.offset };
        return;
      case 'retain':
        retainFrom = fromWireWatermark(m.from);
        needsRoom = m.needsRoom;
        return;
      case 'call':
        void answer(m.id, m);
        return;
      case 'stop':
        void stop();
        return;
    }
  });
  channel.onClose(() => void stop());
  return { stopped, store: storeReady, stop };
}

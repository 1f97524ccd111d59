import { createPublicKey } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AdminTokens } from '../admin';
import { AuditStore } from '../clickhouse';
import type { Settings } from '../config';
import { createInvestigationsApp, drainAccessLog, serveOnSocket } from '../investigate';
import { fromWireWatermark, STORE_SOCKET, type Channel, type FromStore, type LaneRef, type SealCall, type ToStore } from '../ipc';
import type { Logger } from '../log';
import { loadVerifyKeys } from '../seal';
import { channelLogger } from './channel-logger';
import { SharedPreparation } from './shared-preparation';
import { StoreLane, type LaneHost } from './store-lane';

/** How long the API waits for the schema before it is announced anyway (ClickHouse unreachable). */
const SERVE_UNPREPARED_MS = 10_000;

/** Stats for the gateway's metrics go this often (and with every shipped batch). */
const STATS_EVERY_MS = 500;

export interface StoreService {
  /** Resolves once the service has stopped (asked to, or its channel closed). */
  readonly stopped: Promise<void>;
  /** The AuditStore once init has come (the in-process seam hands it to tests). */
  readonly store: Promise<AuditStore>;
  /** Stops as `stop` does: the current batch finishes, the store closes. */
  stop(): Promise<void>;
}

/**
 * The audit store process's work (README: Processes): on `init`, opens the AuditStore
 * (chDB embedded, or CLICKHOUSE_URL), answers the sealer's seal calls, and serves the
 * investigations API on DATA_DIR/store.sock. It ships any number of lanes into that one
 * store, each a proxy worker's spool read through a SpoolLink fed by the gateway (durable
 * end, room, the sealer's watermark): lane 0 from `init` itself (WORKERS=1), the others
 * opened and closed by `lane` and `laneClose` (WORKERS > 1). Stops on `stop` (after each
 * lane's current batch) or when the channel closes (the gateway is gone: it never outlives it).
 */
export function runStoreService(channel: Channel<FromStore, ToStore>): StoreService {
  let stopping: Promise<void> | null = null;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let resolveStore!: (store: AuditStore) => void;
  const storeReady = new Promise<AuditStore>((r) => (resolveStore = r));
  let started: Promise<Started> | null = null;
  // What lane work waits for: the started service, or null (init failed, or a stop came first).
  let resolveInitialised!: (s: Promise<Started | null>) => void;
  const initialised = new Promise<Started | null>((r) => (resolveInitialised = r));
  const send = (m: FromStore) => channel.send(m);

  interface Started {
    store: AuditStore;
    host: LaneHost;
    server: { current: Server | null };
    app: ReturnType<typeof createInvestigationsApp>;
    log: Logger;
    statsTimer: NodeJS.Timeout;
  }

  /** The lane each index reads now (its current gen): where `durable` and `retain` go. */
  const current = new Map<number, StoreLane>();
  /** Lanes started and not yet stopped (a replaced or closed one stays here while it finishes its batch). */
  const live = new Set<StoreLane>();
  /** Opening and closing of each lane index, one after the other (a new gen starts once the old one stopped). */
  const laneWork = new Map<number, Promise<void>>();
  /** Records of lanes stopped in this process: the stats keep counting them. */
  const retired = { shipped: 0, deadLettered: 0 };

  const sendStats = () => {
    let shipped = retired.shipped;
    let deadLettered = retired.deadLettered;
    let oldestUnshippedAt = 0;
    for (const lane of live) {
      shipped += lane.shippedRecords;
      deadLettered += lane.deadLetteredRecords;
      const at = lane.oldestUnshippedAt;
      if (at !== 0 && (oldestUnshippedAt === 0 || at < oldestUnshippedAt)) oldestUnshippedAt = at;
    }
    send({ t: 'stats', shipped, deadLettered, oldestUnshippedAt });
  };

  function enqueue(index: number, work: () => Promise<void>): void {
    const next = (laneWork.get(index) ?? Promise.resolve()).then(work).catch((err: unknown) => {
      // Nothing here should throw (a shipper never does); said, never fatal.
      send({ t: 'log', level: 'error', fields: { lane: index }, msg: `audit store: lane work failed: ${(err as Error).message}` });
    });
    laneWork.set(index, next);
  }

  /** Stops a lane (its current batch finished) and keeps its totals. Idempotent. */
  async function retire(lane: StoreLane): Promise<void> {
    await lane.stop();
    if (live.delete(lane)) {
      retired.shipped += lane.shippedRecords;
      retired.deadLettered += lane.deadLetteredRecords;
    }
  }

  /**
   * Makes `lane` its index's current lane now (the link state messages that follow are its
   * own), and starts it once the service has started and the lane it replaces has stopped.
   */
  function open(lane: StoreLane): void {
    const previous = current.get(lane.lane);
    current.set(lane.lane, lane);
    // The replaced worker is gone: nothing more for its gen, though its last batch is finished.
    previous?.mute();
    enqueue(lane.lane, async () => {
      if (previous !== undefined) await retire(previous);
      const s = await initialised;
      if (s === null || stopping !== null || current.get(lane.lane) !== lane) return; // stopping, or replaced meanwhile
      lane.start(s.host);
      live.add(lane);
      if (lane.tagged) send({ t: 'laneOpened', ...lane.ref });
    });
  }

  function close(ref: LaneRef): void {
    const index = ref.lane ?? 0;
    const lane = current.get(index);
    if (lane === undefined || !lane.owns(ref.gen)) return; // unknown, or an older gen already replaced
    current.delete(index);
    lane.mute();
    enqueue(index, () => retire(lane));
  }

  /** The current lane a link-state message is for, if it is still that gen's. */
  function laneOf(ref: LaneRef): StoreLane | undefined {
    const lane = current.get(ref.lane ?? 0);
    return lane !== undefined && lane.owns(ref.gen) ? lane : undefined;
  }

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
    const preparation = new SharedPreparation(store, (applied) => {
      log.info({ store: store.kind, database: store.database, migrations_applied: applied }, 'audit store ready');
      send({ t: 'ready', applied });
      announce.prepared = true;
      announce.check();
    });
    // Begun now, whether or not a lane is open yet; the lanes' shippers share it (and retry it).
    preparation.prepare().catch(() => {});
    const host: LaneHost = {
      settings,
      store: { prepare: () => preparation.prepare(), insertLines: (lines) => store.insertLines(lines) },
      log,
      send,
      shipped: sendStats,
    };
    const statsTimer = setInterval(sendStats, STATS_EVERY_MS);
    statsTimer.unref();

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
    return { store, host, server, app, log, statsTimer };
  }

  async function answer(id: number, call: SealCall, ref: LaneRef): Promise<void> {
    // The reply names the caller's lane and gen when the call did (a worker's sealer, through the primary).
    const echo: LaneRef = {};
    if (ref.lane !== undefined) echo.lane = ref.lane;
    if (ref.gen !== undefined) echo.gen = ref.gen;
    try {
      const s = await started;
      if (s === null || s === undefined) throw Object.assign(new Error('the audit store is not initialised'), { code: 'GW_ERR_STORE_DOWN' });
      const value = call.method === 'insertSeals' ? await s.store.insertSeals(call.seals) : await s.store.latestSealPeriod(call.chain);
      send({ t: 'reply', id, ok: true, value: value ?? null, ...echo });
    } catch (err) {
      send({ t: 'reply', id, ok: false, code: String((err as { code?: unknown }).code ?? 'ERROR'), message: (err as Error).message, ...echo });
    }
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      resolveInitialised(Promise.resolve(null)); // lane work waiting for an init that never came ends
      const s = await started?.catch(() => null);
      if (s) {
        clearInterval(s.statsTimer);
        s.server.current?.close();
        s.server.current?.closeAllConnections();
        // Every lane finishes its batch (opening and closing under way first), then the store closes.
        await Promise.all([...laneWork.values()]);
        await Promise.all([...live].map(retire));
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
        // Lane 0's state (WORKERS=1): read as before lanes existed. With WORKERS > 1 the lanes come in `lane` messages.
        if (m.durableEnd !== undefined)
          open(
            new StoreLane(0, undefined, false, {
              durableEnd: m.durableEnd,
              retainFrom: fromWireWatermark(m.retainFrom ?? null),
              needsRoom: m.needsRoom ?? false,
            }),
          );
        started = start(m.settings, m.publicKeyPem);
        resolveInitialised(started.catch(() => null));
        started.catch((err: unknown) => {
          // A bad CLICKHOUSE_URL database name, an unreadable tokens or verify-keys file: said in the
          // gateway's log, then this process ends (the supervisor tries again with its backoff).
          const code = String((err as { code?: unknown }).code ?? 'ERROR');
          const msg = `audit store cannot start (records wait in the spool): ${(err as Error).message}`;
          if (!send({ t: 'log', level: 'error', fields: { code }, msg })) process.stderr.write(`spine-gateway audit store: ${msg}\n`);
          void stop();
        });
        return;
      case 'lane':
        // Before init too: it waits for the service to start.
        open(
          new StoreLane(m.lane ?? 0, m.gen, true, {
            durableEnd: { segment: m.durableEnd.segment, offset: m.durableEnd.offset },
            retainFrom: fromWireWatermark(m.retainFrom),
            needsRoom: m.needsRoom,
          }),
        );
        return;
      case 'laneClose':
        close(m);
        return;
      case 'durable': {
        const lane = laneOf(m);
        if (lane !== undefined) lane.link.durableEnd = { segment: m.segment, offset: m.offset };
        return;
      }
      case 'retain': {
        const lane = laneOf(m);
        if (lane === undefined) return;
        lane.link.retainFrom = fromWireWatermark(m.from);
        lane.link.needsRoom = m.needsRoom;
        return;
      }
      case 'call':
        void answer(m.id, m, m);
        return;
      case 'stop':
        void stop();
        return;
    }
  });
  channel.onClose(() => void stop());
  return { stopped, store: storeReady, stop };
}

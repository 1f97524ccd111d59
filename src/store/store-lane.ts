import { join } from 'node:path';
import type { AuditStoreError } from '../clickhouse';
import type { Settings } from '../config';
import { workerSpoolDir } from '../data-dir';
import type { FromStore, LaneRef, WirePosition } from '../ipc';
import type { Logger } from '../log';
import { Shipper, type ShipperFileWork, type ShipperStore } from '../shipper';
import { SpoolQueue, type SpoolLink } from '../spool';

const SHIPPER_WORK: Record<ShipperFileWork, string> = {
  read: 'reading the spool',
  checkpoint: 'saving the checkpoint',
  delete: 'deleting a shipped segment',
  dead_letter: 'writing a dead-letter file',
  loop: 'the shipping loop (restarted)',
};

/** What the gateway (or the cluster primary, for a worker) last told of a lane's spool. */
export interface LaneLinkState {
  durableEnd: WirePosition;
  /** The sealer's watermark (lowest segment to keep); Infinity: none. */
  retainFrom: number;
  needsRoom: boolean;
}

/** What every lane of one store process shares. */
export interface LaneHost {
  settings: Settings;
  store: ShipperStore;
  log: Logger;
  send(m: FromStore): void;
  /** A batch was stored: the summed stats go out now (as they did with one spool). */
  shipped(): void;
}

/**
 * One lane (README "Processes": one per proxy worker's spool) in the audit store process:
 * a SpoolQueue over `workerSpoolDir(DATA_DIR, lane)` fed by the lane's own link state, and
 * a Shipper that resumes from that spool's own checkpoint. Lane-scoped answers (released,
 * suspect) name the lane and gen when `tagged` (opened by a `lane` message); the lane 0 that
 * `init` opens (WORKERS=1) sends them and its log lines exactly as before lanes existed.
 */
export class StoreLane {
  readonly link: LaneLinkState;
  private shipper: Shipper | null = null;
  private stopping: Promise<void> | null = null;
  /** Set when its worker is gone (laneClose, or replaced): nothing more is sent for this gen. */
  private muted = false;

  constructor(
    readonly lane: number,
    readonly gen: number | undefined,
    readonly tagged: boolean,
    state: LaneLinkState,
  ) {
    this.link = { ...state };
  }

  /** The lane and gen as the lane-scoped messages carry them (nothing for init's lane 0). */
  get ref(): LaneRef {
    if (!this.tagged) return {};
    return this.gen === undefined ? { lane: this.lane } : { lane: this.lane, gen: this.gen };
  }

  /** Does a message naming `gen` belong to this lane's worker? (No gen: the lane's current worker.) */
  owns(gen: number | undefined): boolean {
    return gen === undefined || gen === this.gen;
  }

  get shippedRecords(): number {
    return this.shipper?.shippedRecords ?? 0;
  }

  get deadLetteredRecords(): number {
    return this.shipper?.deadLetteredRecords ?? 0;
  }

  get oldestUnshippedAt(): number {
    return this.shipper?.oldestUnshippedAt ?? 0;
  }

  /** Lane-scoped messages stop here: its worker is gone, and its successor counts its bytes anew. */
  mute(): void {
    this.muted = true;
  }

  /** Starts reading the lane's spool from its checkpoint and shipping it. */
  start(host: LaneHost): void {
    if (this.shipper !== null || this.stopping !== null) return;
    const log = this.tagged ? host.log.child({ lane: this.lane }) : host.log;
    const say = (m: FromStore) => {
      if (!this.muted) host.send(m);
    };
    const state = this.link;
    const link: SpoolLink = {
      get durableEnd() {
        return state.durableEnd;
      },
      get needsRoom() {
        return state.needsRoom;
      },
      released: (bytes) => say({ t: 'released', bytes, ...this.ref }),
      suspect: () => say({ t: 'suspect', ...this.ref }),
    };
    const queue = new SpoolQueue(workerSpoolDir(host.settings.DATA_DIR, this.lane), link);
    queue.retain(() => state.retainFrom);
    const { send } = host;
    this.shipper = new Shipper(
      {
        // One folder for every lane (the replay command reads it whole); a lane > 0 names itself in
        // each file's name, so two lanes at the same position in the same millisecond never collide.
        deadLetterDir: join(host.settings.DATA_DIR, 'dead-letter'),
        deadLetterTag: this.lane === 0 ? undefined : `lane${this.lane}`,
        batchMaxRecords: host.settings.AUDIT_BATCH_MAX_RECORDS,
        batchMaxAgeMs: host.settings.AUDIT_BATCH_MAX_AGE_MS,
        minBackoffMs: 100,
        maxBackoffMs: 30_000,
      },
      queue,
      host.store,
      {
        // Said once per store process by the shared preparation (src/store/shared-preparation.ts), not per lane.
        ready() {},
        shipped(records, seconds) {
          send({ t: 'shipped', records, seconds });
          host.shipped();
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
    this.shipper.start();
  }

  /** Finishes the current batch (its checkpoint saved) and stops; the same promise for every caller. */
  stop(): Promise<void> {
    this.stopping ??= this.shipper?.stop() ?? Promise.resolve();
    return this.stopping;
  }
}

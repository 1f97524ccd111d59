import type { Seal } from '../seal';
import type { Settings } from '../config';

/**
 * The store channel (README: Processes): the gateway process and the audit store process
 * talk in these messages, JSON over the child's IPC channel (or, in the in-process test
 * seam, JSON-cloned over an in-memory pair). Nothing of a request or a record travels
 * here: positions, counts, error codes, seals and log lines only.
 */

/** Where durable spool data ends: the store's reader never reads past it. */
export interface WirePosition {
  segment: number;
  offset: number;
}

/** The seal store's calls, answered by the store process (SealStore in src/seal). */
export type SealCall = { method: 'insertSeals'; seals: Seal[] } | { method: 'latestSealPeriod'; chain: string };

/**
 * A lane is one proxy worker's spool (README "Processes"): lane i reads
 * `workerSpoolDir(DATA_DIR, i)` (src/data-dir). Every lane-scoped message names its lane; an
 * absent `lane` is lane 0 (WORKERS=1, and every message before lanes existed). `gen` tells
 * apart the successive workers of one lane (a worker killed and replaced): the store answers
 * with the gen it was opened with, and whoever routes the answers drops those of a gen that is
 * no longer current (a segment deleted for a dead worker must not be subtracted from its
 * replacement's count).
 */
export interface LaneRef {
  lane?: number;
  gen?: number;
}

/** Gateway → store. */
export type ToStore =
  | {
      t: 'init';
      /** The gateway's settings as plain JSON (the store reads no environment of its own). */
      settings: Settings;
      /** The seal key's public half: the store never generates nor reads the private key. */
      publicKeyPem: string;
      /**
       * Lane 0's state, opening it with the store (WORKERS=1: the gateway's own spool). Absent
       * with WORKERS > 1: the primary opens each worker's lane with a `lane` message.
       */
      durableEnd?: WirePosition;
      /** The sealer's retain watermark (lowest spool segment to keep); null: none (Infinity). */
      retainFrom?: number | null;
      needsRoom?: boolean;
    }
  /**
   * Opens lane `lane` (its SpoolQueue and shipper), from its checkpoint. A lane that is open
   * with another gen is closed first (its batch finished), then opened anew. Answered by `laneOpened`.
   */
  | ({
      t: 'lane';
      durableEnd: WirePosition;
      /** The sealer's retain watermark (lowest spool segment to keep); null: none (Infinity). */
      retainFrom: number | null;
      needsRoom: boolean;
    } & LaneRef)
  /** The lane's worker is gone: finish its batch, stop reading it, send nothing more for that gen. */
  | ({ t: 'laneClose' } & LaneRef)
  | ({ t: 'durable'; segment: number; offset: number } & LaneRef)
  | ({ t: 'retain'; from: number | null; needsRoom: boolean } & LaneRef)
  | ({ t: 'call'; id: number } & SealCall & LaneRef)
  /** Finish the current batch, close the store, exit. */
  | { t: 'stop' };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

export type ShipperWork = 'read' | 'checkpoint' | 'delete' | 'dead_letter' | 'loop';

/** Store → gateway. Lane-scoped: released, suspect, laneOpened, reply (to a call with that lane). */
export type FromStore =
  | ({ t: 'released'; bytes: number } & LaneRef)
  | ({ t: 'suspect' } & LaneRef)
  /** The lane reads its spool now; no other reader of it remains (the worker may count its bytes anew). */
  | ({ t: 'laneOpened' } & LaneRef)
  | { t: 'ready'; applied: number[] }
  | { t: 'shipped'; records: number; seconds: number }
  | { t: 'failed'; code: string; retryInMs: number }
  | { t: 'deadLettered'; records: number }
  | { t: 'skippedBadBytes'; bytes: number }
  /** End-facts final records stored without their begin record (a damaged spool). */
  | { t: 'unmatchedFinals'; records: number }
  | { t: 'fileFault'; kind: ShipperWork; code: string }
  | { t: 'fileRecovered'; kind: ShipperWork }
  | { t: 'stats'; shipped: number; deadLettered: number; oldestUnshippedAt: number }
  | ({ t: 'reply'; id: number; ok: true; value: unknown } & LaneRef)
  | ({ t: 'reply'; id: number; ok: false; code: string; message: string } & LaneRef)
  | { t: 'log'; level: LogLevel; fields: Record<string, unknown>; msg: string }
  /** The investigations API answers on this Unix socket. */
  | { t: 'serving'; socket: string }
  | { t: 'stopped' };

/** The name of the investigations API's Unix socket in DATA_DIR (mode 0600). */
export const STORE_SOCKET = 'store.sock';

/** JSON has no Infinity: the watermark "keep nothing for the sealer" travels as null. */
export function wireWatermark(from: number): number | null {
  return Number.isFinite(from) ? from : null;
}

export function fromWireWatermark(from: number | null): number {
  return from === null ? Infinity : from;
}

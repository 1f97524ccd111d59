import { join } from 'node:path';

/**
 * Where each proxy worker keeps its files under DATA_DIR (README "Processes"). Worker 0 uses
 * DATA_DIR itself (`spool/`, `audit-seals.ndjson`), so WORKERS=1 reads the same files as a
 * gateway before workers existed, and going from 1 to N workers keeps shipping the old spool;
 * worker i > 0 uses `DATA_DIR/workers/<i>/`. A worker's directory is its own: its spool, its
 * seal file (its own seal chain) and its lock. Nothing else writes there.
 */
export function workerDir(dataDir: string, index: number): string {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`worker index must be a non-negative integer, not ${index}`);
  return index === 0 ? dataDir : join(dataDir, 'workers', String(index));
}

/** The spool directory of worker `index`. */
export function workerSpoolDir(dataDir: string, index: number): string {
  return join(workerDir(dataDir, index), 'spool');
}

/** Held by a running worker in its directory: a replacement waits until the one it replaces is gone. */
export const WORKER_LOCK_FILE = 'worker.lock';

/** The environment variable that tells a forked proxy worker its index (set by the primary only). */
export const WORKER_INDEX_ENV = 'SPINE_GATEWAY_WORKER_INDEX';

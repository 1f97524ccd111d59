import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A place in the spool: a segment and a byte offset in it. */
export interface SpoolPosition {
  segment: number;
  offset: number;
}

const FILE = 'checkpoint.json';

/**
 * The shipper's checkpoint: everything before it is acknowledged by ClickHouse.
 * Written to a temporary file, fsync'd, renamed over the old one, and the folder fsync'd,
 * so a crash leaves either the old checkpoint or the new one, never half of one.
 */
export function writeCheckpoint(dir: string, position: SpoolPosition): void {
  const tmp = join(dir, `${FILE}.tmp`);
  writeFileSync(tmp, JSON.stringify(position));
  const fd = openSync(tmp, 'r+');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(dir, FILE));
  const dirFd = openSync(dir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
}

/** writeCheckpoint on libuv's pool (the shipper's loop): the same steps, the event loop never waits on the disk. */
export async function saveCheckpoint(dir: string, position: SpoolPosition): Promise<void> {
  const tmp = join(dir, `${FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(position));
  await syncPath(tmp, 'r+');
  await rename(tmp, join(dir, FILE));
  await syncPath(dir, 'r');
}

async function syncPath(path: string, flags: string): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** readCheckpoint with the file read on libuv's pool (the shipper's loop). */
export async function loadCheckpoint(dir: string, segments: readonly number[]): Promise<SpoolPosition> {
  let text: string | null;
  try {
    text = await readFile(join(dir, FILE), 'utf8');
  } catch {
    text = null;
  }
  return placeCheckpoint(parseCheckpoint(text), segments);
}

function parseCheckpoint(text: string | null): SpoolPosition | null {
  if (text === null) return null;
  try {
    const parsed = JSON.parse(text) as SpoolPosition;
    if (Number.isSafeInteger(parsed.segment) && Number.isSafeInteger(parsed.offset)) return { segment: parsed.segment, offset: parsed.offset };
  } catch {
    /* a torn or foreign file: start at the oldest segment */
  }
  return null;
}

/**
 * The checkpoint, moved onto a segment that exists: a checkpoint may point at a segment
 * already deleted (a crash between deleting it and writing the next checkpoint), and
 * start-up must not loop on it (vector PR #25570). With none, reading starts at the oldest segment.
 */
export function readCheckpoint(dir: string, segments: readonly number[]): SpoolPosition {
  let text: string | null;
  try {
    text = readFileSync(join(dir, FILE), 'utf8');
  } catch {
    text = null;
  }
  return placeCheckpoint(parseCheckpoint(text), segments);
}

function placeCheckpoint(saved: SpoolPosition | null, segments: readonly number[]): SpoolPosition {
  const oldest = segments[0] ?? 1;
  if (saved === null || saved.segment < oldest) return { segment: oldest, offset: 0 };
  if (!segments.includes(saved.segment)) {
    const next = segments.find((s) => s > saved!.segment);
    return { segment: next ?? saved.segment, offset: 0 };
  }
  return saved;
}

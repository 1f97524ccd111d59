import { closeSync, fsyncSync, ftruncateSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Seal } from './seal-format';

/** The local copy of the chain: `DATA_DIR/audit-seals.ndjson`, one seal's JSON per line, append-only. */
export const SEAL_FILE = 'audit-seals.ndjson';

const CHUNK = 64 * 1024;

/** A line of the seal file as a seal, or null when it is not one (torn, or not written by us). */
export function parseSeal(line: string): Seal | null {
  try {
    const s = JSON.parse(line) as Seal;
    if (typeof s !== 'object' || s === null) return null;
    if (typeof s.chain !== 'string' || typeof s.digest !== 'string' || typeof s.signature !== 'string') return null;
    if (!Number.isSafeInteger(s.first_seq) || !Number.isSafeInteger(s.last_seq) || !Array.isArray(s.dropped)) return null;
    if (!Number.isFinite(Date.parse(s.period_start)) || !Number.isFinite(Date.parse(s.period_end))) return null;
    return s;
  } catch {
    return null;
  }
}

/**
 * Reads the file backwards in chunks, calling `line` for each line, last first, with the
 * offset where it starts and whether a newline ends it, until it returns false.
 */
function eachLineBackward(fd: number, size: number, line: (text: string, start: number, terminated: boolean) => boolean): void {
  let end = size;
  let carry = Buffer.alloc(0); // the start of a line whose beginning is in an earlier chunk
  let terminated: boolean | null = null; // unknown until the last byte is read
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const chunk = Buffer.allocUnsafe(end - start);
    for (let got = 0; got < chunk.length;) {
      const n = readSync(fd, chunk, got, chunk.length - got, start + got);
      if (n === 0) throw Object.assign(new Error(`${SEAL_FILE} shrank while it was read`), { code: 'EIO' });
      got += n;
    }
    const data = carry.length === 0 ? chunk : Buffer.concat([chunk, carry]);
    let stop = data.length;
    if (terminated === null) {
      terminated = data[data.length - 1] === 0x0a;
      if (terminated) stop--;
    }
    for (let i = stop - 1; i >= 0; i--) {
      if (data[i] !== 0x0a) continue;
      if (!line(data.toString('utf8', i + 1, stop), start + i + 1, stop < data.length)) return;
      stop = i;
    }
    carry = Buffer.from(data.subarray(0, stop));
    end = start;
  }
  if (carry.length > 0 || terminated !== null) line(carry.toString('utf8'), 0, terminated === true || carry.length < size);
}

export interface OpenedSealFile {
  /** The chain's last seal in the file, or null for a new (or emptied) file. */
  last: Seal | null;
  /** Bytes cut off the end: a torn last line (a write cut short by a crash), or a last line that is not a seal. */
  cutBytes: number;
}

/**
 * The seal file. Opened at start-up (synchronously, before traffic): a torn last line is
 * cut, as the spool cuts a torn record, and the last seal is read to continue the chain.
 * Appends go through libuv's pool (write, then fdatasync), one at a time; a failed append
 * is cut back off and throws, so the caller can keep the seal and try again.
 */
export class SealFile {
  private constructor(
    readonly path: string,
    private size: number,
  ) {}

  /** Throws a file-system error other than ENOENT as it is, and one coded GW_ERR_SEAL_FILE_CORRUPT when more than the last line is not a seal. */
  static open(path: string): { file: SealFile } & OpenedSealFile {
    let fd: number;
    try {
      fd = openSync(path, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { file: new SealFile(path, 0), last: null, cutBytes: 0 };
      throw err;
    }
    try {
      const size = fstatSync(fd).size;
      let last: Seal | null = null;
      let keep = 0;
      let complete = true;
      let notSeals = 0;
      // The last line may be torn (a write cut short): it is cut. Anything more that is not a
      // seal is not ours to cut: start-up stops rather than destroy the local copy of the chain.
      eachLineBackward(fd, size, (text, start, terminated) => {
        const seal = parseSeal(text);
        if (seal === null) return ++notSeals < 2;
        last = seal;
        keep = start + Buffer.byteLength(text);
        complete = terminated;
        return false;
      });
      if (notSeals > 1)
        throw Object.assign(new Error(`its last lines are not seals (move it aside to start a new chain)`), { code: 'GW_ERR_SEAL_FILE_CORRUPT' });
      if (last !== null && complete) keep++; // its newline
      if (keep < size) ftruncateSync(fd, keep);
      // A whole seal whose newline did not make it: the newline is added, the seal kept.
      if (last !== null && !complete) keep += writeSync(fd, '\n', keep);
      if (keep !== size) fsyncSync(fd);
      return { file: new SealFile(path, keep), last, cutBytes: Math.max(0, size - keep) };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Appends seals, one line each, in one write, and makes them durable. The file is opened
   * for each append (once a period): a file made read-only or immutable, or replaced, is
   * noticed at once. On failure a partly written line is cut off and the error thrown.
   */
  async append(seals: readonly Seal[]): Promise<void> {
    if (seals.length === 0) return;
    const data = Buffer.from(seals.map((seal) => `${JSON.stringify(seal)}\n`).join(''));
    let handle: FileHandle | null = null;
    try {
      handle = await open(this.path, 'a', 0o644);
      await handle.write(data, 0, data.length);
      await handle.datasync();
      this.size += data.length;
    } catch (err) {
      // Cut a partly written line off: a later seal must never follow half of one.
      if (handle !== null) await handle.truncate(this.size).catch(() => {});
      throw err;
    } finally {
      if (handle !== null) await handle.close().catch(() => {});
    }
  }

  /** Seals of `chain` after `periodStart` (epoch ms; null: all), in file order: read back from the end. */
  readAfter(chain: string, periodStart: number | null): Seal[] {
    const found: Seal[] = [];
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return found;
      throw err;
    }
    try {
      eachLineBackward(fd, this.size, (text) => {
        const seal = parseSeal(text);
        if (seal === null || seal.chain !== chain) return true;
        if (periodStart !== null && Date.parse(seal.period_start) <= periodStart) return false;
        found.push(seal);
        return true;
      });
    } finally {
      closeSync(fd);
    }
    return found.reverse();
  }
}

import { closeSync, fdatasync, fsync, ftruncateSync, openSync, writeSync, writevSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { encodeRecord } from './framing';
import { segmentPath } from './segments';

/** The spool is at its size cap: AUDIT_FAILURE_MODE decides what happens to the request. */
export class SpoolFullError extends Error {
  readonly code = 'GW_ERR_SPOOL_FULL';
  constructor(readonly capBytes: number) {
    super(`audit spool is full (${capBytes} bytes)`);
    this.name = 'SpoolFullError';
  }
}

/** The disk did not make a record durable within the deadline (a hung or very slow disk). */
export class SpoolTimeoutError extends Error {
  readonly code = 'GW_ERR_SPOOL_TIMEOUT';
  /** `pending`: the record is in the file and may become durable later; otherwise it was never written. */
  constructor(
    readonly deadlineMs: number,
    readonly pending: boolean,
  ) {
    super(`audit spool write did not complete within ${deadlineMs} ms`);
    this.name = 'SpoolTimeoutError';
  }
}

export interface SpoolWriterOptions {
  dir: string;
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number;
  /** All segments on disk together stay at or under this (strict). */
  maxBytes: number;
  /** An fdatasync taking longer fails its appends with SpoolTimeoutError (0: no deadline). */
  deadlineMs?: number;
  /**
   * Group-commit window (ms): awaited records gather this long, then one write and one
   * fdatasync serve them all (PostgreSQL's commit_delay). 0: commit as soon as possible.
   */
  commitDelayMs?: number;
}

/** Where the durable data ends: what a reader may read up to. */
export interface DurableEnd {
  segment: number;
  offset: number;
}

type Waiter = (err?: Error) => void;

function after(a: DurableEnd, b: DurableEnd): boolean {
  return a.segment > b.segment || (a.segment === b.segment && a.offset > b.offset);
}

/**
 * Appends records to the current segment, in two ways:
 * - append(): the record waits in memory for the group-commit window, then one write
 *   and one fdatasync serve every record gathered; it resolves once durable. For records
 *   that something waits on (the in-flight record gates forwarding: until it resolves,
 *   nothing has happened that a crash could leave unrecorded).
 * - appendNow(): the record goes into the file at once (one write into the page cache,
 *   so a process kill cannot lose it from the moment the call returns) and is made
 *   durable by the next group's fdatasync; nothing waits on it. For final records,
 *   written as a reply completes.
 * fdatasync runs on libuv's pool, so the event loop never waits on the disk for it.
 *
 * One watchdog timer enforces the deadline: an fdatasync that overruns it fails its
 * appends (SpoolTimeoutError, pending) and marks the writer stalled, so later appends
 * fail at once instead of hanging, until the disk answers again.
 */
export class SpoolWriter {
  private fd: number;
  /** Awaited records gathered for the next group (not yet in the file), and their waiters. */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private waiting: Waiter[] = [];
  /** Records written by appendNow() since the last fdatasync began. */
  private unsynced = false;
  private commitTimer: NodeJS.Timeout | null = null;
  /** Appends covered by the fdatasync under way. */
  private inFlight: Waiter[] = [];
  private syncing = false;
  private syncStartedAt = 0;
  private stalled = false;
  private closed = false;
  /** fdatasync calls under way per file descriptor: a finished segment's fd is closed when its count reaches 0. */
  private readonly syncsOn = new Map<number, number>();
  private readonly retired = new Set<number>();
  private durable: DurableEnd;
  private readonly watchdog: NodeJS.Timeout | null;
  /** fdatasync calls made: with group commit, far fewer than records. */
  fsyncs = 0;
  /** Records written into segments since open. */
  recordsWritten = 0;
  /** Size of the last record offered (written or refused): what "room for one more" means. */
  private lastFrameBytes = 0;

  private constructor(
    private readonly options: SpoolWriterOptions,
    private segment: number,
    private segmentSize: number,
    /** Bytes of every segment on disk. */
    private totalBytes: number,
  ) {
    this.fd = openSync(segmentPath(options.dir, segment), 'a');
    this.durable = { segment, offset: segmentSize };
    const deadline = options.deadlineMs ?? 0;
    this.watchdog = deadline > 0 ? setInterval(() => this.checkDeadline(deadline), Math.max(10, deadline / 4)) : null;
    this.watchdog?.unref();
  }

  /** Opens segment `segment` (created if missing) to append at `size`, its recovered good end. */
  static async open(options: SpoolWriterOptions, segment: number, size: number, totalBytes: number): Promise<SpoolWriter> {
    return new SpoolWriter(options, segment, size, totalBytes);
  }

  get bytesOnDisk(): number {
    return this.totalBytes;
  }

  get durableEnd(): DurableEnd {
    return this.durable;
  }

  /** Whether an append now can succeed: not closed, not stalled, and room for a record like the last one. */
  get writable(): boolean {
    return !this.closed && !this.stalled && this.totalBytes + this.lastFrameBytes <= this.options.maxBytes;
  }

  /** Refuses at once (nothing written) when closed, stalled or over the cap; else reserves the room. */
  private admit(frame: Buffer): Error | null {
    if (this.closed) return new Error('spool is closed');
    if (this.stalled) return new SpoolTimeoutError(this.options.deadlineMs ?? 0, false);
    this.lastFrameBytes = frame.length;
    if (this.totalBytes + frame.length > this.options.maxBytes) return new SpoolFullError(this.options.maxBytes);
    this.totalBytes += frame.length;
    return null;
  }

  /** Gathers the record for the next group commit; resolves once it is durable. */
  append(payload: Buffer): Promise<void> {
    const frame = encodeRecord(payload);
    const refused = this.admit(frame);
    if (refused) return Promise.reject(refused);
    this.gathered.push(frame);
    this.gatheredBytes += frame.length;
    return new Promise((resolve, reject) => {
      this.waiting.push((err) => (err ? reject(err) : resolve()));
      this.scheduleCommit();
    });
  }

  /** Writes the record into the file now; it becomes durable with the next group. Throws if refused. */
  appendNow(payload: Buffer): void {
    const frame = encodeRecord(payload);
    const refused = this.admit(frame);
    if (refused) throw refused;
    this.writeFrames([frame], frame.length);
    this.unsynced = true;
    this.scheduleCommit();
  }

  private writeFrames(frames: Buffer[], bytes: number): void {
    if (this.segmentSize > 0 && this.segmentSize + bytes > this.options.segmentBytes) this.rotate();
    try {
      let done = frames.length === 1 ? writeSync(this.fd, frames[0]) : writevSync(this.fd, frames);
      if (done < bytes) {
        const rest = Buffer.concat(frames).subarray(done);
        for (let i = 0; i < rest.length; ) i += writeSync(this.fd, rest, i);
        done = bytes;
      }
    } catch (err) {
      // ENOSPC, EIO: cut any partial frame off, so no torn record sits before later ones.
      this.totalBytes -= bytes;
      try {
        ftruncateSync(this.fd, this.segmentSize);
      } catch {
        /* the next recovery cuts it */
      }
      throw err;
    }
    this.segmentSize += bytes;
    this.recordsWritten += frames.length;
  }

  private scheduleCommit(): void {
    if (this.commitTimer !== null || this.syncing) return;
    const delay = this.options.commitDelayMs ?? 0;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = null;
      this.sync();
    }, delay);
  }

  /** The shipper deleted segments worth `bytes`: room for new records. */
  released(bytes: number): void {
    this.totalBytes -= bytes;
  }

  /** Writes the gathered records (one write) and makes everything so far durable (one fdatasync). */
  private sync(): void {
    const waiters = this.waiting;
    this.waiting = [];
    if (this.gathered.length > 0) {
      const frames = this.gathered;
      const bytes = this.gatheredBytes;
      this.gathered = [];
      this.gatheredBytes = 0;
      try {
        this.writeFrames(frames, bytes);
      } catch (err) {
        for (const w of waiters) w(err as Error);
        return;
      }
    } else if (!this.unsynced) {
      for (const w of waiters) w();
      return;
    }
    this.unsynced = false;
    this.syncing = true;
    this.inFlight = waiters;
    const end: DurableEnd = { segment: this.segment, offset: this.segmentSize };
    this.syncStartedAt = performance.now();
    this.syncFile(this.fd, (err) => {
      this.syncing = false;
      const settled = this.inFlight;
      this.inFlight = [];
      this.settle(settled, end, err);
      if ((this.waiting.length > 0 || this.unsynced) && !this.closed) this.scheduleCommit();
    });
  }

  /** fdatasync on the pool; a retired segment's fd is closed after its last sync returns. */
  private syncFile(fd: number, done: (err: NodeJS.ErrnoException | null) => void): void {
    this.syncsOn.set(fd, (this.syncsOn.get(fd) ?? 0) + 1);
    fdatasync(fd, (err) => {
      this.fsyncs++;
      const left = this.syncsOn.get(fd)! - 1;
      if (left === 0) {
        this.syncsOn.delete(fd);
        if (this.retired.delete(fd)) closeSync(fd);
      } else {
        this.syncsOn.set(fd, left);
      }
      done(err);
    });
  }

  private settle(waiters: Waiter[], end: DurableEnd, err: NodeJS.ErrnoException | null): void {
    if (err) {
      for (const w of waiters) w(err);
      return;
    }
    this.stalled = false;
    if (after(end, this.durable)) this.durable = end;
    for (const w of waiters) w();
  }

  /**
   * Starts a new segment. The finished one is synced on the pool like any group (its
   * waiting appends resolve when that sync returns), so rotation never blocks the event loop.
   */
  private rotate(): void {
    const oldFd = this.fd;
    const end: DurableEnd = { segment: this.segment, offset: this.segmentSize };
    this.retired.add(oldFd);
    this.unsynced = false;
    this.syncFile(oldFd, (err) => this.settle([], end, err));
    this.segment++;
    this.segmentSize = 0;
    this.fd = openSync(segmentPath(this.options.dir, this.segment), 'a');
    // Make the new file's directory entry durable too.
    const dir = openSync(this.options.dir, 'r');
    fsync(dir, () => closeSync(dir));
  }

  /** One timer for all appends: fails the fdatasync under way when it overruns the deadline. */
  private checkDeadline(deadline: number): void {
    if (!this.syncing || this.inFlight.length === 0 || performance.now() - this.syncStartedAt < deadline) return;
    this.stalled = true;
    for (const w of this.inFlight.splice(0)) w(new SpoolTimeoutError(deadline, true));
  }

  /** Commits what is gathered, waits for the last fdatasync, then closes the segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    if (this.commitTimer !== null) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    if (this.waiting.length > 0 || this.unsynced) {
      this.sync();
      while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    }
    while (this.syncsOn.size > 0) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    closeSync(this.fd);
  }
}

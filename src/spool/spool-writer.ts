import { closeSync, fdatasync, fsync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { frameInto, maxFrameBytes } from './framing';
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
/** Told when a record handed to appendWritten() is in the file (no error) or could not be (the error). */
export type Written = (err?: Error) => void;

function after(a: DurableEnd, b: DurableEnd): boolean {
  return a.segment > b.segment || (a.segment === b.segment && a.offset > b.offset);
}

/** Records are framed into one reusable buffer and leave it in a single write. */
const ARENA_BYTES = 256 * 1024;

/**
 * Appends records to the current segment. Every record is framed straight into one
 * reusable buffer (the arena), and the arena goes into the file in one write: no buffer
 * per record, one system call for many. Two kinds of append:
 * - append(): resolves once the record is durable. The arena is written and fdatasync'd
 *   at the end of the group-commit window, one fdatasync for every record gathered. For
 *   records that something waits on (the in-flight record gates forwarding: until it
 *   resolves, nothing has happened that a crash could leave unrecorded).
 * - appendWritten(): `written` is called once the record is in the file (in the page
 *   cache: a process kill can no longer lose it), at the latest at the end of this turn
 *   of the event loop, so every reply completing in one turn shares one write. It becomes
 *   durable with the next group. For final records: the reply is ended in `written`.
 * fdatasync runs on libuv's pool, so the event loop never waits on the disk for it.
 *
 * One watchdog timer enforces the deadline: an fdatasync that overruns it fails its
 * appends (SpoolTimeoutError, pending) and marks the writer stalled, so later appends
 * fail at once instead of hanging, until the disk answers again.
 */
export class SpoolWriter {
  private fd: number;
  private arena = Buffer.allocUnsafe(ARENA_BYTES);
  private arenaBytes = 0;
  /** Waiters of awaited records still in the arena (one per append()). */
  private arenaWaiters: Waiter[] = [];
  /** Callbacks of appendWritten() records still in the arena (one per record). */
  private arenaWritten: Written[] = [];
  private flushQueued = false;
  /** Waiters of records in the file, for the next fdatasync. */
  private unsyncedWaiters: Waiter[] = [];
  /** Bytes are in the file that no fdatasync has covered yet. */
  private unsynced = false;
  private commitTimer: NodeJS.Timeout | null = null;
  /** fdatasync calls under way (the group's, and a rotated segment's) with the appends each covers. */
  private readonly underWay = new Set<{ startedAt: number; waiters: Waiter[] }>();
  /** The group's fdatasync is under way: the next group waits for it. */
  private syncing = false;
  private stalled = false;
  private closed = false;
  /** fdatasync calls under way per file descriptor: a finished segment's fd is closed when its count reaches 0. */
  private readonly syncsOn = new Map<number, number>();
  private readonly retired = new Set<number>();
  private durable: DurableEnd;
  private readonly watchdog: NodeJS.Timeout | null;
  private readonly flushNow = () => {
    this.flushQueued = false;
    this.flush();
  };
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
    /** Bytes of every segment on disk, and of the records in the arena. */
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

  /**
   * Frames the record into the arena and admits it: refused at once (nothing kept) when
   * closed, stalled or over the cap.
   */
  private take(record: string | Buffer): Error | null {
    if (this.closed) return new Error('spool is closed');
    if (this.stalled) return new SpoolTimeoutError(this.options.deadlineMs ?? 0, false);
    const room = maxFrameBytes(record);
    if (this.arenaBytes + room > this.arena.length) {
      if (this.arenaBytes > 0) this.flush();
      if (room > this.arena.length) this.arena = Buffer.allocUnsafe(room);
    }
    const bytes = frameInto(this.arena, this.arenaBytes, record);
    this.lastFrameBytes = bytes;
    if (this.totalBytes + bytes > this.options.maxBytes) return new SpoolFullError(this.options.maxBytes);
    this.totalBytes += bytes;
    this.arenaBytes += bytes;
    return null;
  }

  /** Gathers the record for the next group commit; resolves once it is durable. */
  append(record: string | Buffer): Promise<void> {
    const refused = this.take(record);
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      this.arenaWaiters.push((err) => (err ? reject(err) : resolve()));
      this.scheduleCommit();
    });
  }

  /**
   * Puts the record into the file by the end of this turn of the event loop, then calls
   * `written` (with the error if it was refused or the write failed); durable with the next group.
   */
  appendWritten(record: string | Buffer, written: Written): void {
    const refused = this.take(record);
    if (refused) return written(refused);
    this.arenaWritten.push(written);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushNow);
    }
    this.scheduleCommit();
  }

  /** Writes the arena into the current segment (one write) and tells whoever waits on that. */
  private flush(): void {
    const bytes = this.arenaBytes;
    if (bytes === 0) return;
    const waiters = this.arenaWaiters;
    const written = this.arenaWritten;
    this.arenaWaiters = [];
    this.arenaWritten = [];
    this.arenaBytes = 0;
    let failure: Error | undefined;
    try {
      this.writeOut(this.arena.subarray(0, bytes));
      this.recordsWritten += waiters.length + written.length;
      this.unsynced = true;
      for (const w of waiters) this.unsyncedWaiters.push(w);
    } catch (err) {
      this.totalBytes -= bytes;
      failure = err as Error;
      for (const w of waiters) w(failure);
    }
    for (const w of written) w(failure);
  }

  private writeOut(data: Buffer): void {
    if (this.segmentSize > 0 && this.segmentSize + data.length > this.options.segmentBytes) this.rotate();
    try {
      for (let done = 0; done < data.length; ) done += writeSync(this.fd, data, done);
    } catch (err) {
      // ENOSPC, EIO: cut any partial frame off, so no torn record sits before later ones.
      try {
        ftruncateSync(this.fd, this.segmentSize);
      } catch {
        /* the next recovery cuts it */
      }
      throw err;
    }
    this.segmentSize += data.length;
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

  /** Writes the arena (one write) and makes everything so far durable (one fdatasync). */
  private sync(): void {
    this.flush();
    if (!this.unsynced) return;
    this.unsynced = false;
    this.syncing = true;
    this.syncCovering(this.fd, { segment: this.segment, offset: this.segmentSize }, () => {
      this.syncing = false;
      if ((this.arenaBytes > 0 || this.unsynced) && !this.closed) this.scheduleCommit();
    });
  }

  /** fdatasync of `fd`, settling the appends written so far once it returns (or the deadline passes). */
  private syncCovering(fd: number, end: DurableEnd, then: () => void): void {
    const sync = { startedAt: performance.now(), waiters: this.unsyncedWaiters };
    this.unsyncedWaiters = [];
    this.underWay.add(sync);
    this.syncFile(fd, (err) => {
      this.underWay.delete(sync);
      this.settle(sync.waiters, end, err);
      then();
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
    this.syncCovering(oldFd, end, () => {});
    this.segment++;
    this.segmentSize = 0;
    this.fd = openSync(segmentPath(this.options.dir, this.segment), 'a');
    // Make the new file's directory entry durable too.
    const dir = openSync(this.options.dir, 'r');
    fsync(dir, () => closeSync(dir));
  }

  /** One timer for all appends: fails the fdatasync under way when it overruns the deadline. */
  private checkDeadline(deadline: number): void {
    const now = performance.now();
    for (const sync of this.underWay) {
      if (sync.waiters.length === 0 || now - sync.startedAt < deadline) continue;
      this.stalled = true;
      for (const w of sync.waiters.splice(0)) w(new SpoolTimeoutError(deadline, true));
    }
  }

  /** Commits what is gathered, waits for the last fdatasync, then closes the segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    if (this.commitTimer !== null) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    this.sync();
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    while (this.syncsOn.size > 0) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    closeSync(this.fd);
  }
}

import { closeSync, fdatasync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
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
 * Appends records to the current segment.
 *
 * Each record is written into the file at once (one write(2) into the page cache), so a
 * record survives the process being killed from the moment append() returns, and the
 * order of records on disk is the order of the calls. Durability against power loss
 * comes from fdatasync with group commit: while one fdatasync is under way, new records
 * wait; the next one covers them all. append() resolves once its record is durable.
 * fdatasync runs on libuv's pool, so the event loop never waits on the disk for it.
 *
 * One watchdog timer enforces the deadline: an fdatasync that overruns it fails its
 * appends (SpoolTimeoutError, pending) and marks the writer stalled, so later appends
 * fail at once instead of hanging, until the disk answers again.
 */
export class SpoolWriter {
  private fd: number;
  /** Appends written since the last fdatasync began, waiting for the next one. */
  private waiting: Waiter[] = [];
  /** Appends covered by the fdatasync under way. */
  private inFlight: Waiter[] = [];
  private syncing = false;
  private syncStartedAt = 0;
  private stalled = false;
  private closed = false;
  /** File descriptors of finished segments, closed once the fdatasync under way (on one of them) returns. */
  private retired: number[] = [];
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

  /**
   * Writes the record now; resolves when it is durable. Rejects at once, writing nothing,
   * with SpoolFullError over the cap or SpoolTimeoutError while the disk is stalled.
   */
  append(payload: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('spool is closed'));
    if (this.stalled) return Promise.reject(new SpoolTimeoutError(this.options.deadlineMs ?? 0, false));
    const frame = encodeRecord(payload);
    this.lastFrameBytes = frame.length;
    if (this.totalBytes + frame.length > this.options.maxBytes) return Promise.reject(new SpoolFullError(this.options.maxBytes));
    try {
      if (this.segmentSize > 0 && this.segmentSize + frame.length > this.options.segmentBytes) this.rotate();
      for (let done = 0; done < frame.length; ) done += writeSync(this.fd, frame, done);
    } catch (err) {
      // ENOSPC, EIO: cut any partial frame off, so no torn record sits before later ones.
      try {
        ftruncateSync(this.fd, this.segmentSize);
      } catch {
        /* the next recovery cuts it */
      }
      return Promise.reject(err as Error);
    }
    this.segmentSize += frame.length;
    this.totalBytes += frame.length;
    this.recordsWritten++;
    return new Promise((resolve, reject) => {
      this.waiting.push((err) => (err ? reject(err) : resolve()));
      if (!this.syncing) this.sync();
    });
  }

  /** The shipper deleted segments worth `bytes`: room for new records. */
  released(bytes: number): void {
    this.totalBytes -= bytes;
  }

  private sync(): void {
    this.syncing = true;
    this.inFlight = this.waiting;
    this.waiting = [];
    const end: DurableEnd = { segment: this.segment, offset: this.segmentSize };
    this.syncStartedAt = performance.now();
    fdatasync(this.fd, (err) => {
      this.syncing = false;
      this.fsyncs++;
      for (const fd of this.retired.splice(0)) closeSync(fd);
      const waiters = this.inFlight;
      this.inFlight = [];
      if (err) {
        for (const w of waiters) w(err);
      } else {
        this.stalled = false;
        if (after(end, this.durable)) this.durable = end;
        for (const w of waiters) w();
      }
      if (this.waiting.length > 0 && !this.closed) this.sync();
    });
  }

  /** A finished segment is made durable at once (rare: once per segment), then a new one starts. */
  private rotate(): void {
    fdatasyncSync(this.fd);
    this.durable = { segment: this.segment, offset: this.segmentSize };
    for (const w of this.waiting.splice(0)) w();
    for (const w of this.inFlight.splice(0)) w();
    if (this.syncing) this.retired.push(this.fd);
    else closeSync(this.fd);
    this.segment++;
    this.segmentSize = 0;
    this.fd = openSync(segmentPath(this.options.dir, this.segment), 'a');
    // Make the new file's directory entry durable too.
    const dir = openSync(this.options.dir, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** One timer for all appends: fails the fdatasync under way when it overruns the deadline. */
  private checkDeadline(deadline: number): void {
    if (!this.syncing || this.inFlight.length === 0 || performance.now() - this.syncStartedAt < deadline) return;
    this.stalled = true;
    for (const w of this.inFlight.splice(0)) w(new SpoolTimeoutError(deadline, true));
  }

  /** Waits for the last fdatasync, then closes the segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    if (this.waiting.length > 0) {
      this.sync();
      while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    }
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    closeSync(this.fd);
  }
}

import { open, type FileHandle } from 'node:fs/promises';
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
  /** `pending`: the record is in a write still under way and may land later; otherwise it was never written. */
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
  /** A write + fdatasync taking longer fails its appends with SpoolTimeoutError (0: no deadline). */
  deadlineMs?: number;
}

/** Where the durable data ends: what a reader may read up to. */
export interface DurableEnd {
  segment: number;
  offset: number;
}

/**
 * Appends records to the current segment with group commit: while one write + fdatasync
 * is under way, new records queue; the next write takes them all and one fdatasync makes
 * them all durable. append() resolves only once its record is on disk. All file work is
 * asynchronous (libuv's pool), so the event loop never waits on the disk.
 * A failed write (ENOSPC, EIO) truncates the segment back to its last good end, so a torn
 * batch never sits in the middle of a segment, and rejects that batch's appends.
 */
export class SpoolWriter {
  private queue: Buffer[] = [];
  private waiters: Array<(err?: Error) => void> = [];
  /** The appends of the write under way, until it completes or the watchdog fails them. */
  private inFlight: Array<(err?: Error) => void> = [];
  private flushStartedAt = 0;
  /** A write overran the deadline and has not completed yet: appends fail at once meanwhile. */
  private stalled = false;
  private readonly watchdog: NodeJS.Timeout | null;
  private flushing = false;
  private closed = false;
  private durable: DurableEnd;
  /** fdatasync calls made: with group commit, far fewer than records. */
  fsyncs = 0;

  private constructor(
    private readonly options: SpoolWriterOptions,
    private handle: FileHandle,
    private segment: number,
    private segmentSize: number,
    /** Bytes of every segment on disk, including queued records. */
    private totalBytes: number,
  ) {
    this.durable = { segment, offset: segmentSize };
    const deadline = options.deadlineMs ?? 0;
    this.watchdog = deadline > 0 ? setInterval(() => this.checkDeadline(deadline), Math.max(10, deadline / 4)) : null;
    this.watchdog?.unref();
  }

  /** One timer for all appends: fails the write under way when it overruns the deadline. */
  private checkDeadline(deadline: number): void {
    if (!this.flushing || this.inFlight.length === 0 || performance.now() - this.flushStartedAt < deadline) return;
    this.stalled = true;
    const failed = this.inFlight;
    this.inFlight = [];
    for (const w of failed) w(new SpoolTimeoutError(deadline, true));
  }

  /** Whether an append now can succeed (not full, not stalled, not closed). */
  get writable(): boolean {
    return !this.closed && !this.stalled && this.totalBytes < this.options.maxBytes;
  }

  /** Records made durable since open. */
  recordsWritten = 0;

  /** Opens segment `segment` (created if missing) to append at `size`, its recovered good end. */
  static async open(options: SpoolWriterOptions, segment: number, size: number, totalBytes: number): Promise<SpoolWriter> {
    const handle = await open(segmentPath(options.dir, segment), 'a');
    return new SpoolWriter(options, handle, segment, size, totalBytes);
  }

  get bytesOnDisk(): number {
    return this.totalBytes;
  }

  get durableEnd(): DurableEnd {
    return this.durable;
  }

  /** Resolves when the record is durable; rejects with SpoolFullError at once when over the cap. */
  append(payload: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('spool is closed'));
    if (this.stalled) return Promise.reject(new SpoolTimeoutError(this.options.deadlineMs ?? 0, false));
    const frame = encodeRecord(payload);
    if (this.totalBytes + frame.length > this.options.maxBytes) return Promise.reject(new SpoolFullError(this.options.maxBytes));
    this.totalBytes += frame.length;
    return new Promise((resolve, reject) => {
      this.queue.push(frame);
      this.waiters.push((err) => (err ? reject(err) : resolve()));
      if (!this.flushing) void this.flushLoop();
    });
  }

  /** The shipper deleted segments worth `bytes`: room for new records. */
  released(bytes: number): void {
    this.totalBytes -= bytes;
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const frames = this.queue;
      this.inFlight = this.waiters;
      this.queue = [];
      this.waiters = [];
      this.flushStartedAt = performance.now();
      const bytes = frames.reduce((n, f) => n + f.length, 0);
      try {
        if (this.segmentSize > 0 && this.segmentSize + bytes > this.options.segmentBytes) await this.rotate();
        await this.writeAll(frames, bytes);
        await this.handle.datasync();
        this.fsyncs++;
        this.segmentSize += bytes;
        this.durable = { segment: this.segment, offset: this.segmentSize };
        this.recordsWritten += frames.length;
        this.stalled = false;
        for (const w of this.inFlight) w();
      } catch (err) {
        this.totalBytes -= bytes;
        await this.handle.truncate(this.segmentSize).catch(() => {});
        this.stalled = false;
        for (const w of this.inFlight) w(err as Error);
      }
      this.inFlight = [];
    }
    this.flushing = false;
  }

  private async writeAll(frames: Buffer[], bytes: number): Promise<void> {
    const written = (await this.handle.writev(frames)).bytesWritten;
    if (written === bytes) return;
    // A short write (rare on local files): append what is left (the file is opened to append).
    const rest = Buffer.concat(frames).subarray(written);
    for (let done = 0; done < rest.length; ) done += (await this.handle.write(rest, done)).bytesWritten;
  }

  private async rotate(): Promise<void> {
    await this.handle.close();
    this.segment++;
    this.segmentSize = 0;
    this.handle = await open(segmentPath(this.options.dir, this.segment), 'a');
    // Make the new file's directory entry durable too.
    const dir = await open(this.options.dir, 'r');
    await dir.sync().finally(() => dir.close());
  }

  /** Waits for queued records, then closes the segment. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    while (this.flushing) await new Promise((r) => setTimeout(r, 1));
    await this.handle.close();
  }
}

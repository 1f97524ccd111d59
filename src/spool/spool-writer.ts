import { open, type FileHandle } from 'node:fs/promises';
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

export interface SpoolWriterOptions {
  dir: string;
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number;
  /** All segments on disk together stay at or under this (strict). */
  maxBytes: number;
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
  }

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
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      const bytes = frames.reduce((n, f) => n + f.length, 0);
      try {
        if (this.segmentSize > 0 && this.segmentSize + bytes > this.options.segmentBytes) await this.rotate();
        await this.writeAll(frames, bytes);
        await this.handle.datasync();
        this.fsyncs++;
        this.segmentSize += bytes;
        this.durable = { segment: this.segment, offset: this.segmentSize };
        for (const w of waiters) w();
      } catch (err) {
        this.totalBytes -= bytes;
        await this.handle.truncate(this.segmentSize).catch(() => {});
        for (const w of waiters) w(err as Error);
      }
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
    while (this.flushing) await new Promise((r) => setTimeout(r, 1));
    await this.handle.close();
  }
}

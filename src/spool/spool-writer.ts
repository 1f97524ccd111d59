import { closeSync, constants, existsSync, fdatasync, fstatSync, fsync, ftruncateSync, openSync, renameSync, statfs, write, writeSync } from 'node:fs';
import { open as openFile, unlink } from 'node:fs/promises';
// recount() alone (kept apart so that the line above stays as it was)
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../errors';
import { frameInto, maxFrameBytes } from './framing';
import { SPARE_NAME, listSegments, segmentPath } from './segments';

/** The spool is at its size cap: AUDIT_FAILURE_MODE decides what happens to the request. */
export class SpoolFullError extends GatewayError {
  declare readonly code: 'GW_ERR_SPOOL_FULL';
  constructor(readonly capBytes: number) {
    super('GW_ERR_SPOOL_FULL', `audit spool is full (${capBytes} bytes)`);
  }
}

/** The disk did not make a record durable within the deadline (a hung or very slow disk). */
export class SpoolTimeoutError extends GatewayError {
  declare readonly code: 'GW_ERR_SPOOL_TIMEOUT';
  /** `pending`: the record is in the file and may become durable later; otherwise it was never written. */
  constructor(
    readonly deadlineMs: number,
    readonly pending: boolean,
  ) {
    super('GW_ERR_SPOOL_TIMEOUT', `audit spool write did not complete within ${deadlineMs} ms`);
  }
}

/**
 * The spool cannot take records now: a file-system error (ENOSPC, EPERM, EIO, ...) on the
 * last write, rotation or probe. `reason` is that error's code. `held`: this record is
 * kept in memory and written when the disk recovers (it was in a write that failed);
 * otherwise it was refused before it reached the disk and is not kept.
 */
export class SpoolUnavailableError extends GatewayError {
  declare readonly code: 'GW_ERR_SPOOL_UNAVAILABLE';
  constructor(
    readonly reason: string,
    readonly held: boolean,
  ) {
    super('GW_ERR_SPOOL_UNAVAILABLE', `audit spool cannot take records (${reason})`);
  }
}

/** A record offered after the spool was closed (the gateway is stopping): it is not kept. */
export class SpoolClosedError extends GatewayError {
  declare readonly code: 'GW_ERR_SPOOL_CLOSED';
  constructor() {
    super('GW_ERR_SPOOL_CLOSED', 'audit spool is closed (the gateway is stopping): the record was not kept');
  }
}

/**
 * Whether the spool takes records now, reported on every change. `failing` names its
 * cause: an errno code (ENOSPC, EPERM, EIO, EROFS, ...), GW_ERR_SPOOL_FULL (the size cap)
 * or GW_ERR_SPOOL_TIMEOUT (the disk stalled past the deadline).
 */
export type SpoolHealth = { state: 'healthy' } | { state: 'failing'; code: string; message: string; since: number };

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
  /**
   * Preallocate segments and write in place (the default). false: append to growing files,
   * as the previous release did (the bench's comparison; recovery and readers take both).
   */
  preallocate?: boolean;
  /** Told on every change of health (from healthy to failing, back, or to another cause). */
  onHealth?: (health: SpoolHealth, previous: SpoolHealth) => void;
  /**
   * Told when a record given a sequence number (appendWritten's `seq`) is settled: in the
   * file (`stored`), or given up on (never written). A held record settles when the probe
   * writes it, or when it is dropped; `written` may have been called long before.
   */
  onSettled?: (seq: number, stored: boolean, segment: number) => void;
}

/**
 * Start-up recovery postponed because the spool could not be read or cut: run by the
 * probe until it succeeds. Returns where to append and the records to write first
 * (the `interrupted` final records of transactions cut off by the last stop).
 */
export type DeferredRecovery = () => { segment: number; size: number; totalBytes: number; records: string[]; seqs?: number[] };

/** Where the durable data ends: what a reader may read up to. */
export interface DurableEnd {
  segment: number;
  offset: number;
}

type Waiter = (err?: Error) => void;
/** Told when a record handed to appendWritten() is in the file or held (no error), or was dropped (the error). */
export type Written = (err?: Error) => void;

function after(a: DurableEnd, b: DurableEnd): boolean {
  return a.segment > b.segment || (a.segment === b.segment && a.offset > b.offset);
}

const NO_SEQS: number[] = [];
/** Records are framed into one reusable buffer and leave it in a single write. */
const ARENA_BYTES = 256 * 1024;
/** Records kept in memory while the disk fails, at most (about 10,000 final records); beyond it they are dropped and counted. */
export const HELD_MAX_BYTES = 16 * 1024 * 1024;
/** What records without priority (refusals) may fill of it: the rest is kept for final records of forwarded replies. */
export const HELD_LOW_PRIORITY_BYTES = (HELD_MAX_BYTES / 4) * 3;
/** The probe's test write: the headroom the disk must have to count as recovered (a few hundred records). */
const PROBE_BYTES = 256 * 1024;
const PROBE_MIN_MS = 50;
const PROBE_MAX_MS = 1000;
const HEALTHY: SpoolHealth = { state: 'healthy' };
const PROBE_FILE = 'probe.tmp';
/** Segments are opened for positional writes (never O_APPEND, under which Linux ignores the position), created if missing. */
const SEGMENT_FLAGS = constants.O_RDWR | constants.O_CREAT;
/** Zeros written per call while preallocating a segment. */
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);
/**
 * The spare is zeroed in steps of this many bytes, each fdatasync'd, with a pause between
 * (16 MiB: at least 64 x 5 ms, so about half a second): the group commits' fdatasyncs do not
 * queue behind one large write-back. Measured with BENCH_ONLY=spool (README).
 */
const SPARE_STEP_BYTES = 256 * 1024;
const SPARE_PAUSE_MS = 5;
/** At most one free-space check per this many ms while writing in place (see checkSpace). */
const SPACE_CHECK_MS = 20;

/** Writes zeros over [from, to) of `fd` on libuv's pool. */
function zeroFill(fd: number, from: number, to: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (at: number) => {
      if (at >= to) return resolve();
      write(fd, ZERO_CHUNK, 0, Math.min(ZERO_CHUNK.length, to - at), at, (err, n) => (err ? reject(err) : step(at + n)));
    };
    step(from);
  });
}

function datasyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

function noSpace(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device (the file system holding the spool is full)'), { code: 'ENOSPC' });
}

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code !== '' ? code : 'EIO';
}

/**
 * Writes records into the current segment. Every record is framed straight into one
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
 * Segments are preallocated: a new segment is AUDIT_SEGMENT_BYTES of real zeros, written,
 * fdatasync'd and its folder fsync'd before any record goes in, and records are written in
 * place at the end of the data (positional writes). An fdatasync then commits data blocks
 * only: no file size, no block allocation, no journal commit for metadata, which is most of
 * its cost when appending (issue 13). Not ftruncate: it makes a sparse file, whose first
 * write to each block allocates it (metadata again); and Node has no fallocate. The end of
 * the data is found by framing (the first header of zeros; see recovery.ts).
 * The next segment (the spare) is prepared ahead on libuv's pool while the current one
 * fills, under a temporary name, renamed to its segment's name once durable; rotation then
 * only opens it. When it is not ready in time (or the size cap leaves no room for a whole
 * one), rotation creates the next segment empty and appends to it as before (slower
 * fdatasyncs, nothing else changes), and moves on to the spare as soon as it is ready.
 * A record that does not fit the rest of a segment goes to the next one.
 * Size: every segment counts its file's size against the cap (a preallocated one its full
 * size from creation, the spare from when its preparation starts); records written in
 * place add nothing, records appended past a file's end add their bytes.
 * Full disk: writing in place never meets ENOSPC, so the writer checks the free space
 * (statfs, with the group commits) and goes `failing` (ENOSPC) when it is below the probe's
 * headroom, as an appending writer would have; a spare that cannot be prepared fails it too.
 *
 * One watchdog timer enforces the deadline: an fdatasync that overruns it fails its
 * appends (SpoolTimeoutError, pending) and marks the writer stalled, so later appends
 * fail at once instead of hanging, until the disk answers again.
 *
 * No file-system error escapes: a failed write, rotation, fdatasync or open puts the
 * writer in `failing` (health, with the error's code) and it never throws. While failing:
 * - append() is refused at once (SpoolUnavailableError), with no system call;
 * - appendWritten() records (final records: the consumer may hold the reply) are held in
 *   memory, in order, up to HELD_MAX_BYTES, and `written` is called at once;
 * - records that were in the failed write are held too (their awaiting appends are
 *   rejected, marked `held`), so nothing admitted is silently lost;
 * - a probe retries with backoff (50 ms doubling to 1 s; a timer, never a busy loop):
 *   it reopens the segment, cuts any torn bytes, writes the held records, then a 256 KiB
 *   test file with fdatasync; on success the writer is healthy again.
 */
export class SpoolWriter {
  private fd: number;
  private arena = Buffer.allocUnsafe(ARENA_BYTES);
  private arenaBytes = 0;
  /** Waiters of awaited records still in the arena (one per append()). */
  private arenaWaiters: Waiter[] = [];
  /** Callbacks of appendWritten() records still in the arena (one per record). */
  private arenaWritten: Written[] = [];
  /** Sequence numbers of the arena's records (0: none), one per record of arenaWaiters then arenaWritten. */
  private arenaSeqs: number[] = [];
  private flushQueued = false;
  /** Waiters of records in the file, for the next fdatasync. */
  private unsyncedWaiters: Waiter[] = [];
  /** Bytes are in the file that no fdatasync has covered yet. */
  private unsynced = false;
  /** The next group's commit, once scheduled (one per group, so the closure costs nothing that matters). */
  private commitTimer: { cancel(): void } | null = null;
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
  /** The file-system error the writer is failing with; null while writes succeed. */
  private fault: { code: string; message: string; since: number } | null = null;
  /** Framed records kept in memory while the spool cannot take them, oldest first, and how many records each holds. */
  private readonly held: Buffer[] = [];
  private readonly heldCounts: number[] = [];
  /** Sequence numbers of each held chunk's records (settled when written or dropped). */
  private readonly heldSeqs: number[][] = [];
  private heldBytesNow = 0;
  /** Records held in memory now. */
  heldRecords = 0;
  /** Records given up on: held past HELD_MAX_BYTES, or still held when the writer closed. */
  recordsDiscarded = 0;
  /** A failed write left bytes past segmentSize ([from, to)) that could not be cut off or zeroed yet. */
  private torn: { from: number; to: number } | null = null;
  /** Size of the current segment's file (a preallocated one's full size; at least segmentSize). */
  private fileSize = 0;
  /** The next segment, preallocated and named, ready for rotation. */
  private spare: { segment: number; size: number } | null = null;
  /** The spare's preparation under way (its bytes already count against the cap). */
  private spareJob: Promise<unknown> | null = null;
  /** Bytes counted for a spare not yet named as a segment (recount() cannot see them in the folder). */
  private spareReserved = 0;
  private spaceChecking = false;
  private lastSpaceCheck = 0;
  /** Segments preallocated (the spare, or a new spool's first segment). */
  segmentsPreallocated = 0;
  private probeTimer: NodeJS.Timeout | null = null;
  private probeDelay = PROBE_MIN_MS;
  private probing = false;
  /** Failures seen so far: a probe that began before the latest one cannot declare the disk healthy. */
  private failures = 0;
  private reported: SpoolHealth = HEALTHY;
  private deferred: DeferredRecovery | null = null;

  private constructor(
    private readonly options: SpoolWriterOptions,
    private segment: number,
    private segmentSize: number,
    /** Bytes of every segment on disk, and of the records in the arena. */
    private totalBytes: number,
    deferred: { recovery: DeferredRecovery; error: unknown } | null = null,
  ) {
    this.fd = -1;
    this.durable = { segment, offset: segmentSize };
    if (deferred !== null) {
      this.deferred = deferred.recovery;
      this.failWith(deferred.error);
    } else {
      try {
        this.fd = openSync(segmentPath(options.dir, segment), SEGMENT_FLAGS);
        this.fileSize = fstatSync(this.fd).size;
      } catch (err) {
        this.failWith(err);
      }
    }
    const deadline = options.deadlineMs ?? 0;
    this.watchdog = deadline > 0 ? setInterval(() => this.checkDeadline(deadline), Math.max(10, deadline / 4)) : null;
    this.watchdog?.unref();
  }

  /**
   * Opens segment `segment` (created if missing) to append at `size`, its recovered good
   * end, and checks with one test write that the disk takes data. Never throws for a
   * file-system error: the writer then starts `failing` and recovers by itself.
   */
  static async open(options: SpoolWriterOptions, segment: number, size: number, totalBytes: number): Promise<SpoolWriter> {
    const writer = new SpoolWriter(options, segment, size, totalBytes);
    if (writer.fault === null) await writer.probe(true);
    return writer;
  }

  /**
   * A writer whose start-up recovery failed with `error` (the spool could not be read or
   * its torn tail cut): it starts failing, and its probe runs `recovery` until it succeeds.
   */
  static deferred(options: SpoolWriterOptions, error: unknown, recovery: DeferredRecovery): SpoolWriter {
    return new SpoolWriter(options, 1, 0, 0, { recovery, error });
  }

  /** Whether records are taken now, and if not, why (one of the codes in SpoolHealth). */
  get health(): SpoolHealth {
    if (this.fault !== null) return { state: 'failing', ...this.fault };
    if (this.closed) return { state: 'failing', code: 'GW_ERR_SPOOL_CLOSED', message: 'the spool is closed', since: 0 };
    if (this.stalled)
      return { state: 'failing', code: 'GW_ERR_SPOOL_TIMEOUT', message: `the disk did not complete a write within ${this.options.deadlineMs} ms`, since: 0 };
    if (this.held.length > 0 || !this.hasRoomFor(this.lastFrameBytes)) {
      return {
        state: 'failing',
        code: 'GW_ERR_SPOOL_FULL',
        message: `the spool is at its size cap (AUDIT_SPOOL_MAX_BYTES ${this.options.maxBytes})`,
        since: 0,
      };
    }
    return HEALTHY;
  }

  get bytesOnDisk(): number {
    return this.totalBytes;
  }

  get durableEnd(): DurableEnd {
    return this.durable;
  }

  /**
   * Whether an append now can succeed: the last write (or probe) succeeded, not closed,
   * not stalled, nothing held, and room under the cap for a record like the last one.
   */
  get writable(): boolean {
    return this.health.state === 'healthy';
  }

  /** Bytes of records held in memory now. */
  get heldBytes(): number {
    return this.heldBytesNow;
  }

  /**
   * Another part of the spool (the shipper's checkpoint, a segment deletion) met a
   * file-system error: probe the disk now rather than wait for the next append to fail.
   * The probe decides; a healthy disk stays healthy.
   */
  suspect(): void {
    if (this.fault === null && !this.closed) void this.probe();
  }

  /**
   * Frames the record into the arena and admits it: refused at once (nothing kept) when
   * closed, failing, holding records, stalled or over the cap.
   */
  private take(record: string | Buffer): Error | null {
    if (this.closed) return new SpoolClosedError();
    if (this.fault !== null || this.held.length > 0) return new SpoolUnavailableError(this.heldFor(), false);
    if (this.stalled) return new SpoolTimeoutError(this.options.deadlineMs ?? 0, false);
    const room = maxFrameBytes(record);
    // A flush calls the `written` callbacks of the records it wrote, which may append again (into
    // the arena): after one, the record is framed anew where the arena then ends. Bounded: each
    // pass flushes what the arena held.
    for (let pass = 0; ; pass++) {
      if (this.arenaBytes + room > this.arena.length) {
        if (this.arenaBytes > 0) this.flush();
        const fault = this.faultCode(); // the flush may just have failed
        if (fault !== null) return new SpoolUnavailableError(fault, false);
        if (this.arenaBytes > 0 && pass < 8) continue;
        if (this.arenaBytes + room > this.arena.length) {
          const bigger = Buffer.allocUnsafe(this.arenaBytes + room);
          this.arena.copy(bigger, 0, 0, this.arenaBytes);
          this.arena = bigger;
        }
      }
      const before = this.arenaBytes;
      const bytes = frameInto(this.arena, before, record);
      this.lastFrameBytes = bytes;
      const at = this.segmentSize + before;
      const next = this.goesNext(at, bytes, true);
      const growth = this.growthOf(at, bytes, next);
      if (this.totalBytes + growth > this.options.maxBytes) {
        this.note();
        return new SpoolFullError(this.options.maxBytes);
      }
      if (next && before > 0 && pass < 8) {
        // It goes to the next segment: the records before it go into this one first, so the arena never spans two.
        this.flush();
        const fault = this.faultCode();
        if (fault !== null) return new SpoolUnavailableError(fault, false);
        continue;
      }
      if (next) {
        try {
          this.rotate();
        } catch (err) {
          this.failWith(err);
          return new SpoolUnavailableError(this.faultCode() ?? errnoOf(err), false);
        }
      }
      this.totalBytes += growth;
      this.arenaBytes += bytes;
      return null;
    }
  }

  /** Room under the cap for the segment's rest: a preallocated segment's full size, or at least segmentBytes. */
  private get capacity(): number {
    return Math.max(this.options.segmentBytes, this.fileSize);
  }

  /**
   * Whether `bytes` written at `at` of the current segment go to the next one instead: they
   * do not fit its rest, or it is appended to (no preallocation) and a spare is ready.
   * `switchEarly`: false for the arena's flush, whose place take() fixed already.
   */
  private goesNext(at: number, bytes: number, switchEarly: boolean): boolean {
    return at > 0 && (at + bytes > this.capacity || (switchEarly && this.spare !== null && this.fileSize < this.options.segmentBytes));
  }

  /** Bytes the spool's files grow by when `bytes` are written at `at` (or at the start of the next segment). */
  private growthOf(at: number, bytes: number, next: boolean): number {
    if (next) return this.spare !== null ? Math.max(0, bytes - this.spare.size) : bytes;
    return Math.max(0, at + bytes - Math.max(this.fileSize, at));
  }

  /** Whether a record of `bytes` fits under the cap now (in this segment, the spare or a new one). */
  private hasRoomFor(bytes: number): boolean {
    const at = this.segmentSize + this.arenaBytes;
    const next = this.goesNext(at, bytes, true);
    return this.totalBytes + this.growthOf(at, bytes, next) <= this.options.maxBytes;
  }

  /**
   * Gathers the record for the next group commit; `done()` once it is durable, `done(err)`
   * when it is refused (at once, before append returns) or fails. Without `done`, a promise
   * (tests, tools); the hot path passes a callback.
   */
  append(record: string | Buffer): Promise<void>;
  append(record: string | Buffer, done: Written): void;
  append(record: string | Buffer, done?: Written): Promise<void> | void {
    const refused = this.take(record);
    if (done !== undefined) {
      if (refused) return done(refused);
      this.arenaWaiters.push(done);
      return this.scheduleCommit();
    }
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
  appendWritten(record: string | Buffer, written: Written, priority = true, seq = 0): void {
    const refused = this.take(record);
    if (refused) {
      // A final record: the consumer may already hold the reply. Keep it for when the disk recovers.
      if (!this.closed && this.hold(record, priority, seq)) return written();
      if (this.closed) this.recordsDiscarded++;
      if (seq > 0) this.options.onSettled?.(seq, false, this.segment);
      return written(refused);
    }
    this.arenaWritten.push(written);
    if (seq > 0) this.arenaSeqs.push(seq);
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
    const seqs = this.arenaSeqs;
    this.arenaWaiters = [];
    this.arenaWritten = [];
    if (seqs.length > 0) this.arenaSeqs = [];
    this.arenaBytes = 0;
    // What take() counted against the cap for these bytes: given back if the write fails.
    const growth = Math.max(0, this.segmentSize + bytes - this.fileSize);
    try {
      this.writeOut(this.arena.subarray(0, bytes), false);
    } catch (err) {
      this.totalBytes -= growth;
      this.failWith(err);
      // Every record of the failed write is kept (a copy: the arena is reused), in order, for the probe to write.
      const kept = this.holdFramed(Buffer.from(this.arena.subarray(0, bytes)), waiters.length + written.length, HELD_MAX_BYTES, seqs);
      const failure = new SpoolUnavailableError(this.faultCode() ?? errnoOf(err), kept);
      for (const w of waiters) w(failure);
      for (const w of written) w(kept ? undefined : failure);
      return;
    }
    this.recordsWritten += waiters.length + written.length;
    this.unsynced = true;
    this.settleSeqs(seqs, true);
    for (const w of waiters) this.unsyncedWaiters.push(w);
    for (const w of written) w();
  }

  /** Writes `data` at the end of the data (in place, or past the file's end), rotating first when it goes to the next segment. */
  private writeOut(data: Buffer, switchEarly: boolean): void {
    if (this.goesNext(this.segmentSize, data.length, switchEarly)) this.rotate();
    const at = this.segmentSize;
    try {
      for (let done = 0; done < data.length;) done += writeSync(this.fd, data, done, data.length - done, at + done);
    } catch (err) {
      // ENOSPC, EIO: remove any partial frame, so no torn record sits before later ones.
      this.torn = { from: at, to: at + data.length };
      try {
        this.cutTorn();
      } catch {
        /* the probe does it before anything else is written */
      }
      throw err;
    }
    this.segmentSize += data.length;
    if (this.segmentSize > this.fileSize) this.fileSize = this.segmentSize;
  }

  /** Removes the bytes of a failed write: cut off past the file's size, overwritten with zeros within it (a preallocated segment keeps its size). */
  private cutTorn(): void {
    const torn = this.torn;
    if (torn === null) return;
    if (torn.to > this.fileSize) ftruncateSync(this.fd, Math.max(torn.from, this.fileSize));
    const end = Math.min(torn.to, this.fileSize);
    if (torn.from < end) {
      const zeros = Buffer.alloc(end - torn.from);
      for (let done = 0; done < zeros.length;) done += writeSync(this.fd, zeros, done, zeros.length - done, torn.from + done);
    }
    this.torn = null;
  }

  private settleSeqs(seqs: readonly number[], stored: boolean): void {
    if (seqs.length === 0) return;
    const settled = this.options.onSettled;
    // Stored: in the segment just written to (a write never spans a rotation).
    if (settled !== undefined) for (const seq of seqs) settled(seq, stored, this.segment);
  }

  /**
   * The spool needs room: a write failed, records are held in memory, or the segments pass
   * half the size cap. Segments kept only for the sealer (records not sealed yet) are then
   * let go: the trail's availability comes first (README: Tamper evidence, limits).
   */
  get needsRoom(): boolean {
    return this.fault !== null || this.held.length > 0 || this.totalBytes > this.options.maxBytes / 2;
  }

  /** The segment appends go to now (records offered now land in it or a later one). */
  get currentSegment(): number {
    return this.segment;
  }

  /** Why records are being held: the fault, a stalled disk, or the size cap. */
  private heldFor(): string {
    return this.fault !== null ? this.fault.code : this.stalled ? 'GW_ERR_SPOOL_TIMEOUT' : 'GW_ERR_SPOOL_FULL';
  }

  private faultCode(): string | null {
    return this.fault === null ? null : this.fault.code;
  }

  /**
   * Keeps one record (framed) in memory; false when the hold is full (the record is dropped
   * and counted). Records without `priority` (refusals: nothing reached a provider) may fill
   * only three quarters of the hold, so a flood of refusals cannot crowd out the final
   * record of a reply a consumer already received.
   */
  private hold(record: string | Buffer, priority: boolean, seq: number): boolean {
    const frame = Buffer.allocUnsafe(maxFrameBytes(record));
    return this.holdFramed(frame.subarray(0, frameInto(frame, 0, record)), 1, priority ? HELD_MAX_BYTES : HELD_LOW_PRIORITY_BYTES, seq > 0 ? [seq] : NO_SEQS);
  }

  private holdFramed(frames: Buffer, records: number, limit = HELD_MAX_BYTES, seqs: number[] = NO_SEQS): boolean {
    if (this.heldBytesNow + frames.length > limit) {
      this.recordsDiscarded += records;
      this.settleSeqs(seqs, false);
      return false;
    }
    this.held.push(frames);
    this.heldCounts.push(records);
    this.heldSeqs.push(seqs);
    this.heldBytesNow += frames.length;
    this.heldRecords += records;
    this.note();
    return true;
  }

  /** Writes the held records, oldest first, into the spool (throws on the first failure; what was written stays written). */
  private writeHeld(): void {
    try {
      while (this.held.length > 0) {
        const frames = this.held[0];
        const next = this.goesNext(this.segmentSize, frames.length, true);
        const growth = this.growthOf(this.segmentSize, frames.length, next);
        if (this.totalBytes + growth > this.options.maxBytes) throw new SpoolFullError(this.options.maxBytes);
        this.writeOut(frames, true);
        this.held.shift();
        const records = this.heldCounts.shift()!;
        this.settleSeqs(this.heldSeqs.shift()!, true);
        this.heldBytesNow -= frames.length;
        this.heldRecords -= records;
        this.totalBytes += growth;
        this.recordsWritten += records;
        this.unsynced = true;
      }
    } finally {
      // Make what did get written durable even if the rest failed: the shipper can then ship
      // it and delete shipped segments, which is what frees the room for the rest.
      if (this.unsynced) this.scheduleCommit();
    }
  }

  /** Enters (or stays in) `failing` with this error's code; the probe takes it from there. */
  private failWith(err: unknown): void {
    if (err instanceof SpoolFullError) {
      this.note();
      return; // the cap: room returns when acknowledged segments are deleted (released())
    }
    const code = errnoOf(err);
    this.failures++;
    if (this.fault === null || this.fault.code !== code)
      this.fault = { code, message: (err as Error).message ?? String(err), since: this.fault?.since ?? Date.now() };
    this.note();
    this.scheduleProbe();
  }

  /** Tells the listener when the health changed since it was last told. */
  private note(): void {
    const now = this.health;
    const before = this.reported;
    if (now.state === before.state && (now.state === 'healthy' || (before.state === 'failing' && now.code === before.code))) return;
    this.reported = now;
    this.options.onHealth?.(now, before);
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== null || this.probing || this.closed) return;
    const delay = this.probeDelay;
    this.probeDelay = Math.min(PROBE_MAX_MS, this.probeDelay * 2);
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      void this.probe();
    }, delay);
    this.probeTimer.unref();
  }

  /**
   * Finds out whether the disk takes records again: runs a postponed recovery, reopens
   * the segment (an immutable or read-only file fails here), cuts torn bytes, writes the
   * held records, then a test file with fdatasync (a full disk fails here).
   * Healthy on success; otherwise failing with the new error, and tried again later.
   */
  private async probe(initial = false): Promise<void> {
    if (this.probing || this.closed) return;
    this.probing = true;
    const failuresBefore = this.failures;
    // Preallocating the tail is safe only while nothing else can write to it: at open, or in a postponed recovery.
    let fresh = initial;
    try {
      if (this.deferred !== null) {
        fresh = true;
        const t = this.deferred();
        this.deferred = null;
        this.segment = t.segment;
        this.segmentSize = t.size;
        this.totalBytes = t.totalBytes;
        this.durable = { segment: t.segment, offset: t.size };
        if (this.fd >= 0) closeSync(this.fd);
        this.fd = -1;
        // The interrupted records of the last stop go first.
        const leading = t.records.map((r) => {
          const frame = Buffer.allocUnsafe(maxFrameBytes(r));
          return frame.subarray(0, frameInto(frame, 0, r));
        });
        this.held.unshift(...leading);
        this.heldCounts.unshift(...leading.map(() => 1));
        this.heldSeqs.unshift(...leading.map((_, i) => (t.seqs !== undefined && t.seqs[i] > 0 ? [t.seqs[i]] : NO_SEQS)));
        for (const f of leading) this.heldBytesNow += f.length;
        this.heldRecords += leading.length;
      }
      const path = segmentPath(this.options.dir, this.segment);
      const fd = openSync(path, SEGMENT_FLAGS);
      if (this.fd < 0) {
        this.fd = fd;
        this.fileSize = fstatSync(fd).size;
      } else closeSync(fd);
      if (this.torn !== null) this.cutTorn();
      if (fresh) await this.preallocateTail();
      // The held records first (what gets written stays written, even if the rest fails: progress
      // on a nearly full disk), then the test write: recovery needs real headroom, not the slack of
      // a segment's last page, so that a disk at the edge does not flap between episodes.
      if (this.held.length > 0) this.writeHeld();
      await this.testWrite();
      // The next segment too: a disk that cannot hold one more segment is not healthy yet (no flapping at each rotation).
      await this.prepareSpare();
      if (this.held.length > 0) this.writeHeld(); // held while the test write was under way
    } catch (err) {
      this.probing = false;
      if (err instanceof SpoolFullError) {
        this.fault = null;
        this.note();
        return;
      }
      this.failWith(err);
      return;
    }
    this.probing = false;
    if (this.failures !== failuresBefore) {
      this.scheduleProbe(); // a write failed while this probe ran: it proves nothing
      return;
    }
    this.fault = null;
    this.probeDelay = PROBE_MIN_MS;
    this.note();
  }

  /**
   * Fills a new, empty tail segment with zeros up to segmentBytes (one fdatasync, then the
   * folder's fsync), when the cap has room for it; otherwise it is appended to as before.
   */
  private async preallocateTail(): Promise<void> {
    const bytes = this.options.segmentBytes;
    if (this.options.preallocate === false || this.segmentSize > 0 || this.arenaBytes > 0 || this.fileSize >= bytes) return;
    if (this.totalBytes - this.fileSize + bytes > this.options.maxBytes) return;
    await zeroFill(this.fd, this.fileSize, bytes);
    await datasyncFd(this.fd);
    await this.syncDir();
    this.totalBytes += bytes - this.fileSize;
    this.fileSize = bytes;
    this.segmentsPreallocated++;
  }

  /** fsync of the spool's folder (a new or renamed segment's entry), on the pool. */
  private async syncDir(): Promise<void> {
    const dir = await openFile(this.options.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close().catch(() => {});
    }
  }

  /**
   * Starts preparing the spare if there is none and the cap has room for a whole segment
   * (its bytes count from now). A failure (ENOSPC, EPERM, EIO) is a spool fault like any
   * other: the writer goes failing, and its probe prepares the spare before it is healthy again.
   */
  private startSpare(): void {
    if (this.spare !== null || this.spareJob !== null || this.closed || this.fd < 0 || this.options.preallocate === false) return;
    const bytes = this.options.segmentBytes;
    if (this.totalBytes + bytes > this.options.maxBytes) return;
    this.totalBytes += bytes;
    this.spareReserved = bytes;
    const tmp = join(this.options.dir, SPARE_NAME);
    const job = this.zeroSpare(tmp, bytes).then(
      () => {
        this.spareJob = null;
        const segment = this.segment + 1;
        const path = segmentPath(this.options.dir, segment);
        // Renamed on the event loop, so that no rotation takes the name meanwhile; the folder's fsync follows on the pool.
        if (existsSync(path)) throw Object.assign(new Error(`spool segment ${segment} exists already`), { code: 'EEXIST' });
        renameSync(tmp, path);
        this.spareReserved = 0;
        this.spare = { segment, size: bytes };
        this.segmentsPreallocated++;
        if (!this.closed) this.note();
        return this.syncDir().then(() => null);
      },
      async (err: unknown) => {
        this.spareJob = null;
        await unlink(tmp).catch(() => {});
        throw err;
      },
    );
    this.spareJob = job.catch((err: unknown) => {
      this.spareJob = null;
      if (this.spare === null) this.totalBytes -= this.spareReserved;
      this.spareReserved = 0;
      if (!this.closed) this.failWith(err);
      return err;
    });
  }

  /** The spare's zeros, under its temporary name: written, fdatasync'd, closed. */
  private async zeroSpare(tmp: string, bytes: number): Promise<void> {
    const handle = await openFile(tmp, 'w');
    try {
      // Paced: a step of zeros, its fdatasync, a pause. One 16 MiB write-back at once is what the group
      // commits' fdatasyncs would queue behind (the device is shared); in steps they pass in between.
      for (let at = 0; at < bytes; at += SPARE_STEP_BYTES) {
        await zeroFill(handle.fd, at, Math.min(bytes, at + SPARE_STEP_BYTES));
        await handle.datasync();
        if (at + SPARE_STEP_BYTES < bytes) await new Promise((r) => setTimeout(r, SPARE_PAUSE_MS));
      }
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** The probe's step: the spare prepared now (when the cap has room for one); throws its failure. */
  private async prepareSpare(): Promise<void> {
    this.startSpare();
    const failed = this.spareJob === null ? null : await this.spareJob;
    if (failed !== null && failed !== undefined) throw failed;
  }

  /**
   * Writing in place never meets ENOSPC, so a full disk would go unnoticed until the next
   * segment: checked with the group commits (statfs on the pool, at most one per
   * SPACE_CHECK_MS), the spool goes failing (ENOSPC) when the free space is below the
   * probe's headroom, as an appending writer would have; the probe brings it back.
   */
  private checkSpace(): void {
    const now = performance.now();
    if (this.spaceChecking || now - this.lastSpaceCheck < SPACE_CHECK_MS) return;
    this.spaceChecking = true;
    this.lastSpaceCheck = now;
    statfs(this.options.dir, (err, stats) => {
      this.spaceChecking = false;
      if (err || this.closed || this.fault !== null) return;
      if (stats.bavail * stats.bsize < PROBE_BYTES) this.failWith(noSpace());
    });
  }

  /** A 256 KiB file written, fdatasync'd and removed: the disk has headroom and makes data durable. */
  private async testWrite(): Promise<void> {
    const path = join(this.options.dir, PROBE_FILE);
    const handle = await openFile(path, 'w');
    try {
      await handle.write(Buffer.alloc(PROBE_BYTES), 0, PROBE_BYTES, 0);
      await handle.datasync();
    } finally {
      await handle.close().catch(() => {});
      await unlink(path).catch(() => {});
    }
  }

  /**
   * The next group's commit. While an fdatasync is under way the group forms, and it is
   * committed as soon as that returns; otherwise at the end of this turn of the event loop,
   * so every record appended in the turn joins it (setImmediate: a 0 ms timer would wait a
   * millisecond). `commitDelayMs` (AUDIT_GROUP_COMMIT_MS) is only an optional extra delay.
   */
  private scheduleCommit(): void {
    if (this.commitTimer !== null || this.syncing) return;
    const delay = this.options.commitDelayMs ?? 0;
    const commit = () => {
      this.commitTimer = null;
      this.sync();
    };
    if (delay === 0) {
      const immediate = setImmediate(commit);
      this.commitTimer = { cancel: () => clearImmediate(immediate) };
    } else {
      const timeout = setTimeout(commit, delay);
      this.commitTimer = { cancel: () => clearTimeout(timeout) };
    }
  }

  private cancelCommit(): void {
    this.commitTimer?.cancel();
    this.commitTimer = null;
  }

  /**
   * Counts the spool's bytes anew from its folder (a stat per segment, on the event loop:
   * called only when the store process is (re)started, never per record), and returns by how
   * much the count was off (positive: it counted bytes no longer on disk). Deletions are the
   * store's, reported by `released`: a store killed between a deletion and its report would
   * otherwise leave bytes counted against the cap for good. The current segment counts at
   * the size this writer knows (it may be growing under a preallocation now), plus the
   * arena's growth and a spare being prepared, as take() and startSpare() counted them.
   * Nothing while start-up recovery is still pending or once closed (null).
   */
  recount(): number | null {
    if (this.closed || this.deferred !== null || this.fd < 0) return null;
    let total = this.fileSize + Math.max(0, this.segmentSize + this.arenaBytes - this.fileSize) + this.spareReserved;
    for (const segment of listSegments(this.options.dir)) {
      if (segment === this.segment) continue;
      try {
        total += statSync(segmentPath(this.options.dir, segment)).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    const off = this.totalBytes - total;
    if (off !== 0) this.released(off);
    return off;
  }

  /** Acknowledged segments worth `bytes` were deleted (by SpoolQueue, the one caller outside tests): room for new records. */
  released(bytes: number): void {
    this.totalBytes -= bytes;
    if (this.closed) return;
    if (this.fault !== null || this.held.length > 0) {
      // Room again on the disk and under the cap: probe now rather than at the next backoff step
      // (driven by the shipper's progress, so never a busy loop).
      this.probeDelay = PROBE_MIN_MS;
      if (this.probeTimer !== null) {
        clearTimeout(this.probeTimer);
        this.probeTimer = null;
      }
      void this.probe();
    } else {
      this.startSpare(); // the cap may have room for it now
      this.note();
    }
  }

  /** Writes the arena (one write) and makes everything so far durable (one fdatasync). */
  private sync(): void {
    this.flush();
    if (!this.unsynced || this.fd < 0) return;
    this.unsynced = false;
    this.syncing = true;
    if (this.fileSize >= this.options.segmentBytes) this.checkSpace();
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
        if (this.retired.delete(fd)) {
          try {
            closeSync(fd);
          } catch {
            /* nothing more is written to it */
          }
        }
      } else {
        this.syncsOn.set(fd, left);
      }
      done(err);
    });
  }

  private settle(waiters: Waiter[], end: DurableEnd, err: NodeJS.ErrnoException | null): void {
    if (err) {
      this.failWith(err);
      for (const w of waiters) w(err);
      return;
    }
    this.stalled = false;
    if (after(end, this.durable)) this.durable = end;
    // The disk answers again: write what was held meanwhile.
    if (this.held.length > 0 && this.fault === null && !this.probing) void this.probe();
    else this.note();
    for (const w of waiters) w();
  }

  /**
   * Starts a new segment. The finished one is synced on the pool like any group (its
   * waiting appends resolve when that sync returns), so rotation never blocks the event loop.
   */
  private rotate(): void {
    // The new segment first: if it cannot be opened or created (ENOSPC, EPERM), nothing has changed and the write fails cleanly.
    const spare = this.spare !== null && this.spare.segment === this.segment + 1 ? this.spare : null;
    const fd = openSync(segmentPath(this.options.dir, this.segment + 1), spare !== null ? 'r+' : SEGMENT_FLAGS);
    let size: number;
    try {
      size = spare !== null ? spare.size : fstatSync(fd).size;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.spare = null;
    const oldFd = this.fd;
    const end: DurableEnd = { segment: this.segment, offset: this.segmentSize };
    this.retired.add(oldFd);
    this.unsynced = false;
    this.syncCovering(oldFd, end, () => {});
    this.segment++;
    this.segmentSize = 0;
    this.fileSize = size;
    this.fd = fd;
    this.startSpare();
    // The spare's folder entry was made durable when it was named. A new file's too (a failure here is a fault like any other).
    if (spare !== null) return;
    try {
      const dir = openSync(this.options.dir, 'r');
      fsync(dir, (err) => {
        try {
          closeSync(dir);
        } catch {
          /* read-only handle */
        }
        if (err) this.failWith(err);
      });
    } catch (err) {
      this.failWith(err);
    }
  }

  /** One timer for all appends: fails the fdatasync under way when it overruns the deadline. */
  private checkDeadline(deadline: number): void {
    const now = performance.now();
    for (const sync of this.underWay) {
      if (sync.waiters.length === 0 || now - sync.startedAt < deadline) continue;
      this.stalled = true;
      this.note();
      for (const w of sync.waiters.splice(0)) w(new SpoolTimeoutError(deadline, true));
    }
  }

  /** Commits what is gathered, waits for the last fdatasync, then closes the segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    // A last chance for held records (the disk may be back and the probe not yet due).
    if (this.held.length > 0) await this.probe();
    while (this.probing || this.syncing) await new Promise((r) => setTimeout(r, 1));
    this.cancelCommit();
    this.sync();
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    while (this.syncsOn.size > 0) await new Promise((r) => setTimeout(r, 1));
    while (this.spareJob !== null) await this.spareJob; // no file-system work left behind
    this.closed = true;
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    // What is still held can no longer be kept: counted, and the caller logs it.
    this.recordsDiscarded += this.heldRecords;
    this.heldRecords = 0;
    for (const seqs of this.heldSeqs) this.settleSeqs(seqs, false);
    this.held.length = 0;
    this.heldCounts.length = 0;
    this.heldSeqs.length = 0;
    this.heldBytesNow = 0;
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        /* already written and synced */
      }
    }
  }
}

import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { recordIdentity } from '../audit';
import type { AuditStore, AuditStoreError } from '../clickhouse';
import { classifyStoreError } from '../clickhouse';
import { encodeRecord, type AcknowledgeResult, type QueueBatch, type SpoolBatch, type SpoolPosition, type SpoolQueue } from '../spool';

export interface ShipperOptions {
  deadLetterDir: string;
  /**
   * Put in each dead-letter file's name (`<ms>-<tag>-<segment>-<offset>.seg`) when several
   * spools share deadLetterDir (one per proxy worker: README "Processes"), so that two of
   * them dead-lettering at the same position in the same millisecond never write one file.
   */
  deadLetterTag?: string;
  batchMaxRecords: number;
  /** A batch smaller than batchMaxRecords waits at most this long for more. */
  batchMaxAgeMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

export interface ShipperEvents {
  /** Schema prepared (migrations applied) or confirmed: the store answers. */
  ready(appliedMigrations: number[]): void;
  shipped(records: number, seconds: number): void;
  failed(error: AuditStoreError, retryInMs: number): void;
  deadLettered(records: number, file: string, error: AuditStoreError): void;
  skippedBadBytes(bytes: number): void;
  /**
   * A file-system error in the shipper's own work (reading the spool, saving the
   * checkpoint, deleting a shipped segment, writing a dead-letter file): told once when
   * an episode of that kind starts, and `recovered` once when it ends. The work is
   * retried; nothing is skipped and the process goes on.
   */
  fileFault(kind: ShipperFileWork, error: NodeJS.ErrnoException): void;
  fileRecovered(kind: ShipperFileWork): void;
  /**
   * Final records that carried only the end's facts and whose begin record the spool no
   * longer had (SpoolQueue.read says why that cannot happen on a whole spool): stored with
   * what they had, never dropped. Told per batch stored or dead-lettered.
   */
  unmatchedFinals?(records: number): void;
}

export type ShipperFileWork = 'read' | 'checkpoint' | 'delete' | 'dead_letter' | 'loop';

/** What the shipper needs of the audit store: its schema prepared, and lines inserted. */
export type ShipperStore = Pick<AuditStore, 'prepare' | 'insertLines'>;

/** Bytes of spool read for one batch, at most (about 16,000 records). */
const BATCH_MAX_BYTES = 16 * 1024 * 1024;

interface Prepared {
  batch: QueueBatch;
  lines: string;
  records: Identified[];
}

interface Identified {
  id: string;
  version: number;
  line: Buffer;
}

/** Capped exponential backoff with jitter (half to all of the current step). */
class Backoff {
  private step: number;
  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.step = min;
  }
  next(): number {
    const wait = Math.min(this.max, this.step) * (0.5 + Math.random() / 2);
    this.step = Math.min(this.max, this.step * 2);
    return wait;
  }
  reset(): void {
    this.step = this.min;
  }
}

/** Within a batch, only the highest version of each transaction needs to travel. */
function collapse(payloads: Buffer[]): { lines: string; records: Identified[] } {
  const records = payloads.map((line) => ({ ...recordIdentity(line), line }));
  const latest = new Map<string, Identified>();
  for (const r of records) {
    const seen = latest.get(r.id);
    if (seen === undefined || r.version >= seen.version) latest.set(r.id, r);
  }
  return { lines: [...latest.values()].map((r) => r.line.toString('utf8')).join('\n'), records };
}

/** received_at of a record, for the oldest-unshipped gauge (a search in the line, no parse). */
function receivedAt(line: Buffer): number {
  const m = /"received_at":"([^"]{10,40})"/.exec(line.toString('latin1', 0, 200));
  return m ? Date.parse(m[1]) || Date.now() : Date.now();
}

/**
 * Reads the spool in batches (bounded by count and age), inserts them through the
 * audit store, and acknowledges a batch to the spool only once ClickHouse has stored it
 * (the spool then moves its checkpoint and deletes what is no longer needed).
 * Transient failures are retried forever with capped, jittered backoff (the backlog
 * waits on disk meanwhile); a permanent failure sends the batch to a replayable
 * dead-letter file and moves on, never skipping past records silently.
 * Every file-system call in its loop runs on libuv's pool: the event loop never waits on the disk.
 */
export class Shipper {
  private position: SpoolPosition;
  private stopped = false;
  private running: Promise<void> | null = null;
  /** Ends the sleeps under way (the store's preparation and the spool's reading may both be waiting). */
  private readonly wakers = new Set<() => void>();
  /** Kinds of file work failing now (one log line when each starts and ends). */
  private readonly failingWork = new Set<ShipperFileWork>();
  private positionKnown = false;
  /** received_at (epoch ms) of the oldest record not yet shipped; 0 when none. */
  oldestUnshippedAt = 0;
  shippedRecords = 0;
  deadLetteredRecords = 0;

  constructor(
    private readonly options: ShipperOptions,
    private readonly spool: SpoolQueue,
    private readonly store: ShipperStore,
    private readonly events: ShipperEvents,
  ) {
    // The dead-letter folder is made when a first batch needs it; the checkpoint is read when
    // the folder can be listed (a failing disk at start-up must not stop the gateway).
    this.position = { segment: 1, offset: 0 };
  }

  start(): void {
    this.running = this.run();
  }

  /** The loop, restarted after anything unexpected: the shipper never ends the process and never stops for good. */
  private async run(): Promise<void> {
    const backoff = this.backoff();
    while (!this.stopped) {
      try {
        await this.loop();
        return;
      } catch (err) {
        this.fileFailed('loop', err);
        await this.sleep(backoff.next());
      }
    }
  }

  /** Reports the first failure of an episode of `kind`; the disk is then probed by the writer. */
  private fileFailed(kind: ShipperFileWork, err: unknown): void {
    // Kept as it came (an error from another realm is not `instanceof Error`, and its code matters).
    const error = (typeof err === 'object' && err !== null && 'message' in err ? err : new Error(String(err))) as NodeJS.ErrnoException;
    if (!this.failingWork.has(kind)) {
      this.failingWork.add(kind);
      this.events.fileFault(kind, error);
      // The same disk holds the spool: have its writer find out now (once per episode, not per retry).
      this.spool.suspect();
    }
  }

  private fileWorked(kind: ShipperFileWork): void {
    if (this.failingWork.delete(kind)) this.events.fileRecovered(kind);
  }

  /** Reads the checkpoint once the spool folder can be listed, retrying with backoff. */
  private async readPosition(): Promise<boolean> {
    const backoff = this.backoff();
    while (!this.stopped) {
      try {
        this.position = await this.spool.start();
        this.positionKnown = true;
        this.fileWorked('read');
        return true;
      } catch (err) {
        this.fileFailed('read', err);
        await this.sleep(backoff.next());
      }
    }
    return false;
  }

  /** Acknowledges to the spool, and reports its checkpoint and deletion work (it retries what failed at the next call). */
  private async acknowledge(through: SpoolBatch | SpoolPosition): Promise<void> {
    const result: AcknowledgeResult = await this.spool.acknowledge(through);
    if (result.checkpoint === null) this.fileWorked('checkpoint');
    else if (result.checkpoint !== undefined) this.fileFailed('checkpoint', result.checkpoint);
    if (result.deletion === null) this.fileWorked('delete');
    else if (result.deletion !== undefined) this.fileFailed('delete', result.deletion);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of [...this.wakers]) wake();
    await this.running;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Prepares the store (schema, migrations) before the first insert, retrying while it is unreachable. */
  private async prepareStore(): Promise<boolean> {
    const backoff = this.backoff();
    while (!this.stopped) {
      try {
        this.events.ready(await this.store.prepare());
        return true;
      } catch (err) {
        await this.retryLater(classifyStoreError(err), backoff);
      }
    }
    return false;
  }

  private backoff(): Backoff {
    return new Backoff(this.options.minBackoffMs, this.options.maxBackoffMs);
  }

  /** Reports a transient failure and waits the next backoff step. */
  private async retryLater(error: AuditStoreError, backoff: Backoff): Promise<void> {
    const wait = backoff.next();
    this.events.failed(error, wait);
    await this.sleep(wait);
  }

  /** Reads the batch at `from` and gets it ready to send. */
  private async prepare(from: SpoolPosition): Promise<Prepared> {
    const batch = await this.spool.read(from, this.options.batchMaxRecords, BATCH_MAX_BYTES);
    return { batch, ...collapse(batch.payloads) };
  }

  private async loop(): Promise<void> {
    // Once: a restarted loop goes on from where it was (the checkpoint on disk may be behind it).
    // The store is prepared meanwhile: a spool the disk will not let us read says nothing about ClickHouse.
    const storeReady = this.prepareStore();
    const positioned = this.positionKnown || (await this.readPosition());
    if (positioned) await this.acknowledge(this.position); // deletes what was shipped before the last stop
    if (!(await storeReady) || !positioned) return;
    const backoff = this.backoff();
    const fileBackoff = this.backoff();
    /** The following batch, read while ClickHouse inserts the current one (only with a backlog). */
    let next: Promise<Prepared> | null = null;
    while (!this.stopped) {
      let prepared: Prepared;
      try {
        prepared = next !== null ? await next : await this.prepare(this.position);
      } catch (err) {
        // Reading the spool failed (I/O): retry from the same position, never stop shipping.
        next = null;
        this.fileFailed('read', err);
        await this.sleep(fileBackoff.next());
        continue;
      }
      this.fileWorked('read');
      next = null;
      const { batch, lines, records } = prepared;
      if (batch.skippedBadBytes > 0) this.events.skippedBadBytes(batch.skippedBadBytes);
      if (batch.payloads.length === 0) {
        this.oldestUnshippedAt = 0;
        this.position = batch.next;
        // Moves over skipped bytes, and retries a checkpoint or deletion that failed (nothing to do otherwise).
        await this.acknowledge(batch);
        await this.sleep(this.options.batchMaxAgeMs);
        continue;
      }
      this.oldestUnshippedAt = receivedAt(batch.payloads[0]);
      const started = performance.now();
      let deadLettered = false;
      const insert = this.store.insertLines(lines);
      if (!batch.reachedEnd) next = this.prepare(batch.next);
      try {
        await insert;
      } catch (err) {
        // Read again from the same place after the retry or the dead letter (a discarded read may fail unobserved).
        next?.catch(() => {});
        next = null;
        const error = classifyStoreError(err);
        if (error.transient) {
          await this.retryLater(error, backoff);
          continue;
        }
        let file: string;
        try {
          file = await this.deadLetter(batch.payloads);
          this.fileWorked('dead_letter');
        } catch (fileError) {
          // The batch stays in the spool, unskipped: tried again (insert, then dead letter) after a pause.
          this.fileFailed('dead_letter', fileError);
          await this.sleep(fileBackoff.next());
          continue;
        }
        deadLettered = true;
        this.deadLetteredRecords += records.length;
        this.events.deadLettered(records.length, file, error);
      }
      backoff.reset();
      fileBackoff.reset();
      this.position = batch.next;
      if (!deadLettered) {
        this.shippedRecords += records.length;
        this.events.shipped(records.length, (performance.now() - started) / 1000);
      }
      await this.acknowledge(batch);
      if (batch.unmatchedFinals > 0) this.events.unmatchedFinals?.(batch.unmatchedFinals);
      // A partial batch (the reader reached the end of what is durable): let the next one gather for
      // batchMaxAgeMs. After a full batch there is a backlog: go on at once (the next batch is already read).
      if (batch.reachedEnd) await this.sleep(this.options.batchMaxAgeMs);
    }
  }

  /**
   * Writes a batch, framed as the spool's own records, to a dead-letter file for replay.
   * A file that could not be written whole is removed (the batch is tried again).
   */
  private async deadLetter(payloads: Buffer[]): Promise<string> {
    await mkdir(this.options.deadLetterDir, { recursive: true });
    const tag = this.options.deadLetterTag === undefined ? '' : `${this.options.deadLetterTag}-`;
    const file = join(this.options.deadLetterDir, `${Date.now()}-${tag}${this.position.segment}-${this.position.offset}.seg`);
    try {
      await writeFile(file, Buffer.concat(payloads.map((p) => encodeRecord(p))));
    } catch (err) {
      await unlink(file).catch(() => {}); // never created, or gone
      throw err;
    }
    return file;
  }
}

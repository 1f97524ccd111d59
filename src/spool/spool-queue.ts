import { stat, unlink } from 'node:fs/promises';
import { END_FACTS, endFactsAlone, mergeEndFacts, recordIdentity } from '../audit';
import { loadCheckpoint, saveCheckpoint, type SpoolPosition } from './checkpoint';
import { listSegmentsAsync, segmentPath } from './segments';
import { readBatch, type SpoolBatch } from './spool-reader';
import type { DurableEnd } from './spool-writer';

/**
 * What the queue needs of the spool's writer: where durable data ends, whether it is short
 * of room, and where to report bytes freed and disk faults. The writer itself in one
 * process; a link over the store channel when the reader runs in the audit store process.
 */
export interface SpoolLink {
  readonly durableEnd: DurableEnd;
  readonly needsRoom: boolean;
  /** Bytes of deleted segments: the size cap has this much room again. */
  released(bytes: number): void;
  /** The disk just failed some of the reader's work: probe it now. */
  suspect(): void;
}

/**
 * What one acknowledge() did with the disk, for the caller to report: per kind of work,
 * `undefined` when there was none to do, `null` when it worked, the error when it failed
 * (it is then tried again at the next acknowledge; nothing acknowledged is forgotten).
 */
export interface AcknowledgeResult {
  checkpoint?: NodeJS.ErrnoException | null;
  deletion?: NodeJS.ErrnoException | null;
}

/**
 * A batch as the queue hands it out: every end-facts record (version 3) already merged with
 * its begin record into the complete final record (version 2), so what is shipped, and what
 * a dead-letter file keeps, is the complete row.
 */
export interface QueueBatch extends SpoolBatch {
  /** End-facts records in this batch whose begin record could not be found: shipped with what they have. */
  unmatchedFinals: number;
}

/** Records read per step while rebuilding the open transactions at start. */
const REBUILD_BATCH = 20_000;

/** The error as Node gave it (not `instanceof Error` when it comes from another realm, as under a test runner's VM). */
function errno(err: unknown): NodeJS.ErrnoException {
  return (typeof err === 'object' && err !== null && 'message' in err ? err : new Error(String(err))) as NodeJS.ErrnoException;
}

function before(a: SpoolPosition, b: SpoolPosition): boolean {
  return a.segment < b.segment || (a.segment === b.segment && a.offset < b.offset);
}

/**
 * The spool as a queue for its consumer (the shipper): it hands out batches of durable
 * records, and owns everything that follows their acknowledgement: the checkpoint, the
 * deletion of segments no longer needed, and the byte count the size cap is kept by.
 * Every file-system call runs on libuv's pool (fs/promises), never on the event loop.
 *
 * A segment is deleted once it is entirely before the checkpoint and no transaction
 * begun in it is still open: start-up recovery needs the begin record of a transaction
 * cut off by a crash, to write its `interrupted` final record. Each begin record is
 * filed under the segment it was read from (a batch may span several segments).
 * A transaction whose final record is acknowledged is closed.
 *
 * The store merges (issue 13): a final record whose begin record is in the spool carries
 * only what the end of the transaction adds (END_FACTS); read() hands it out merged with
 * that begin record, which the queue keeps from when it is read until its final record is
 * acknowledged. The begin always precedes its final record in the spool (the gateway writes
 * end facts only once the begin is durable) and its segment is kept while it is open, so
 * at start (the store process restarted, or the gateway) start() rebuilds the open
 * transactions from the segments before the checkpoint, reading them without shipping them.
 */
export class SpoolQueue {
  private acknowledged: SpoolPosition = { segment: 1, offset: 0 };
  /** The checkpoint on disk is behind `acknowledged` (not written yet, or its write failed). */
  private checkpointDue = false;
  /** A pass over the shipped segments is due (the checkpoint moved, a transaction closed, or a deletion failed). */
  private deletionDue = true;
  /** Begun transactions whose final record is not acknowledged yet: event id → segment of the begin record. */
  private readonly openBegins = new Map<string, number>();
  private readonly openPerSegment = new Map<number, number>();
  /** Begin records read and not yet closed by an acknowledged final record: what end facts are merged into. */
  private readonly begins = new Map<string, Buffer>();
  /** End-facts records acknowledged without their begin record (see read()): counted, never dropped. */
  unmatchedFinals = 0;
  /** The lowest segment to keep whatever the checkpoint says (the sealer's: its records are not sealed yet). */
  private retainFrom: (needsRoom: boolean) => number = () => Infinity;

  constructor(
    readonly dir: string,
    private readonly writer: SpoolLink,
  ) {}

  /** Where to read from: the saved checkpoint, moved onto a segment that exists. Throws a file-system error as it is. */
  async start(): Promise<SpoolPosition> {
    const segments = await listSegmentsAsync(this.dir);
    const checkpoint = await loadCheckpoint(this.dir, segments);
    await this.rebuild(segments, checkpoint);
    this.acknowledged = checkpoint;
    this.deletionDue = true;
    return { ...this.acknowledged };
  }

  /**
   * The transactions open at the checkpoint: begin records before it whose final record is
   * not before it too. Read (never shipped again) from the oldest segment kept; only
   * segments holding an open begin (or kept for the sealer) are still there, so this is
   * short. Before the first deletion: without it, start-up would delete their segments.
   */
  private async rebuild(segments: readonly number[], checkpoint: SpoolPosition): Promise<void> {
    this.begins.clear();
    this.openBegins.clear();
    this.openPerSegment.clear();
    if (segments.length === 0) return;
    const found = new Map<string, { line: Buffer; segment: number }>();
    let position: SpoolPosition = { segment: segments[0], offset: 0 };
    const end = { segment: checkpoint.segment, offset: checkpoint.offset };
    // Bounded: each step moves forward (or ends), and the checkpoint is a fixed end.
    while (before(position, end)) {
      const batch = await readBatch(this.dir, position, end, REBUILD_BATCH, 16 * 1024 * 1024);
      for (let i = 0; i < batch.payloads.length; i++) {
        const { id, version } = recordIdentity(batch.payloads[i]);
        if (version === 1) found.set(id, { line: batch.payloads[i], segment: batch.segments[i] });
        else found.delete(id);
      }
      if (!before(position, batch.next)) break; // no progress: the end, or nothing readable before it
      position = batch.next;
    }
    for (const [id, { line, segment }] of found) {
      this.begins.set(id, line);
      this.openBegins.set(id, segment);
      this.openPerSegment.set(segment, (this.openPerSegment.get(segment) ?? 0) + 1);
    }
  }

  /**
   * Up to `maxRecords` records (and about `maxBytes`) from `from`, never past what is
   * durable, each end-facts record merged with its begin record. One whose begin cannot be
   * found is handed out as a final record with what it has (the table's defaults for the
   * rest), and counted in the batch. That cannot happen while the spool is whole: the
   * begin is durable before its end facts are written, so it sits before them, and its
   * segment is kept until the final record is acknowledged. Only a spool damaged or edited
   * (a corrupt tail skipped, a segment removed by hand) loses it.
   */
  async read(from: SpoolPosition, maxRecords: number, maxBytes: number): Promise<QueueBatch> {
    const batch = await readBatch(this.dir, from, this.writer.durableEnd, maxRecords, maxBytes);
    let unmatchedFinals = 0;
    const { payloads } = batch;
    for (let i = 0; i < payloads.length; i++) {
      const { id, version } = recordIdentity(payloads[i]);
      // Kept until the final record is acknowledged: a batch read again (after a failed insert) finds it still.
      if (version === 1) this.begins.set(id, payloads[i]);
      else if (version === END_FACTS) {
        const begin = this.begins.get(id);
        if (begin !== undefined) payloads[i] = mergeEndFacts(begin, payloads[i]);
        else {
          payloads[i] = endFactsAlone(payloads[i]);
          unmatchedFinals++;
        }
      }
    }
    return Object.assign(batch, { unmatchedFinals });
  }

  /**
   * Everything before `through` is acknowledged (stored, or dead-lettered): a batch from
   * read() (its records are now shipped, and it ends at its `next`), or a bare position
   * (moving over nothing, such as a skipped bad tail). Saves the checkpoint, deletes the
   * segments no longer needed and gives their bytes back to the writer's size cap.
   * Never throws for the disk: failures are returned, and retried at the next call.
   */
  async acknowledge(through: SpoolBatch | SpoolPosition): Promise<AcknowledgeResult> {
    const position = 'next' in through ? through.next : through;
    if ('next' in through) {
      this.track(through);
      if ('unmatchedFinals' in through) this.unmatchedFinals += (through as QueueBatch).unmatchedFinals;
    }
    if (before(this.acknowledged, position)) {
      if (position.segment > this.acknowledged.segment) this.deletionDue = true;
      this.acknowledged = { segment: position.segment, offset: position.offset };
      this.checkpointDue = true;
    }
    const result: AcknowledgeResult = {};
    if (this.checkpointDue) {
      try {
        await saveCheckpoint(this.dir, this.acknowledged);
        this.checkpointDue = false;
        result.checkpoint = null;
      } catch (err) {
        // A stale checkpoint only means a replay of acknowledged records after a restart (idempotent).
        result.checkpoint = errno(err);
      }
    }
    if (this.deletionDue) result.deletion = await this.deleteShipped();
    return result;
  }

  /**
   * Keeps every segment from `from()` on, shipped or not: the sealer's watermark, so that
   * records not yet covered by a seal in the seal file can be read again after a crash.
   * While the spool needs room (SpoolWriter.needsRoom) the sealer keeps less (`needsRoom`
   * is passed on): a seal waits for held records, and held records wait for room, so
   * keeping every such segment then could hold both for ever.
   */
  retain(from: (needsRoom: boolean) => number): void {
    this.retainFrom = from;
  }

  /** The disk holding the spool just failed some work: have the writer probe it now. */
  suspect(): void {
    this.writer.suspect();
  }

  /** Files each begin record under its own segment, and closes transactions whose final record came. */
  private track(batch: SpoolBatch): void {
    const { payloads, segments } = batch;
    for (let i = 0; i < payloads.length; i++) {
      const { id, version } = recordIdentity(payloads[i]);
      if (version === 1) {
        if (this.openBegins.has(id)) continue; // replayed after a restart of the loop
        const segment = segments[i];
        this.openBegins.set(id, segment);
        this.openPerSegment.set(segment, (this.openPerSegment.get(segment) ?? 0) + 1);
      } else {
        this.begins.delete(id);
        const from = this.openBegins.get(id);
        if (from === undefined) continue;
        this.openBegins.delete(id);
        const left = this.openPerSegment.get(from)! - 1;
        if (left > 0) this.openPerSegment.set(from, left);
        else {
          this.openPerSegment.delete(from);
          if (from < this.acknowledged.segment) this.deletionDue = true;
        }
      }
    }
  }

  /**
   * Deletes segments before the checkpoint's that hold no open transaction's begin record
   * (they free the space a full disk needs). One that cannot be deleted now (EPERM, EIO)
   * stays and is tried again at the next acknowledge.
   */
  private async deleteShipped(): Promise<NodeJS.ErrnoException | null> {
    let segments: number[];
    try {
      segments = await listSegmentsAsync(this.dir);
    } catch (err) {
      return errno(err);
    }
    let failed: NodeJS.ErrnoException | null = null;
    const keepFrom = this.retainFrom(this.writer.needsRoom);
    let retained = false;
    for (const segment of segments) {
      if (segment >= this.acknowledged.segment) break;
      if (segment >= keepFrom) {
        retained = true; // due again at the next acknowledge, once sealed
        break;
      }
      if (this.openPerSegment.has(segment)) continue;
      const path = segmentPath(this.dir, segment);
      try {
        const bytes = (await stat(path)).size;
        await unlink(path);
        this.writer.released(bytes);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gone already
        failed = errno(err);
      }
    }
    this.deletionDue = failed !== null || retained;
    return failed;
  }
}

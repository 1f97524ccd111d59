import { stat, unlink } from 'node:fs/promises';
import { recordIdentity } from '../audit';
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
 * A transaction whose final record is acknowledged is closed; one begun before the last
 * start is not tracked, as recovery already gave it a final record in the spool.
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
  /** The lowest segment to keep whatever the checkpoint says (the sealer's: its records are not sealed yet). */
  private retainFrom: (needsRoom: boolean) => number = () => Infinity;

  constructor(
    readonly dir: string,
    private readonly writer: SpoolLink,
  ) {}

  /** Where to read from: the saved checkpoint, moved onto a segment that exists. Throws a file-system error as it is. */
  async start(): Promise<SpoolPosition> {
    this.acknowledged = await loadCheckpoint(this.dir, await listSegmentsAsync(this.dir));
    this.deletionDue = true;
    return { ...this.acknowledged };
  }

  /** Up to `maxRecords` records (and about `maxBytes`) from `from`, never past what is durable. */
  read(from: SpoolPosition, maxRecords: number, maxBytes: number): Promise<SpoolBatch> {
    return readBatch(this.dir, from, this.writer.durableEnd, maxRecords, maxBytes);
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
    if ('next' in through) this.track(through);
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

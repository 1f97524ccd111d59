import { mkdirSync } from 'node:fs';
import { encodeAuditRecord, interruptedRecord, recordIdentity, type AuditSink, type RecordContext } from '../audit';
import type { Transaction } from '../transaction';
import { readCheckpoint } from './checkpoint';
import { recoverSpool, type RecoveryReport } from './recovery';
import { listSegments } from './segments';
import { SpoolTimeoutError, SpoolWriter } from './spool-writer';

export interface AuditSpoolOptions {
  dir: string;
  segmentBytes: number;
  maxBytes: number;
  deadlineMs: number;
  /** Group-commit window (AUDIT_GROUP_COMMIT_MS). */
  commitDelayMs: number;
  context: RecordContext;
}

export interface AuditSpoolRecovery extends RecoveryReport {
  /** Transactions in flight when the gateway stopped: now recorded as `interrupted`. */
  interrupted: number;
  /** Records not yet shipped (after the checkpoint), the `interrupted` ones included. */
  backlog: number;
}

/**
 * The audit sink on the spool: a transaction's records as JSON lines in checksummed,
 * fsync'd segments. Counts what it could not keep: `dropped` (never written: spool
 * full, or the disk stalled) and `timedOut` (not durable within the deadline; such a
 * record may still land, and is then shipped like any other).
 */
export class AuditSpool implements AuditSink {
  dropped = 0;
  timedOut = 0;

  private constructor(
    readonly writer: SpoolWriter,
    private readonly context: RecordContext,
  ) {}

  /**
   * Recovers the spool (cuts torn tails), then closes every transaction that was in
   * flight at the last stop: its begin record has no final record, so one is written
   * now, with outcome `interrupted`.
   */
  static async open(options: AuditSpoolOptions): Promise<{ spool: AuditSpool; recovery: AuditSpoolRecovery }> {
    mkdirSync(options.dir, { recursive: true });
    const checkpoint = readCheckpoint(options.dir, listSegments(options.dir));
    const open = new Map<string, Buffer>();
    let unshipped = 0;
    // One pass over the spool: recovery's own scan pairs the records and counts the backlog.
    const report = recoverSpool(options.dir, (segment, payload, end) => {
      const { id, version } = recordIdentity(payload);
      if (version === 1) open.set(id, Buffer.from(payload));
      else open.delete(id);
      if (segment > checkpoint.segment || (segment === checkpoint.segment && end > checkpoint.offset)) unshipped++;
    });
    const writer = await SpoolWriter.open(
      { dir: options.dir, segmentBytes: options.segmentBytes, maxBytes: options.maxBytes, deadlineMs: options.deadlineMs, commitDelayMs: options.commitDelayMs },
      report.tail.segment,
      report.tail.size,
      report.totalBytes,
    );
    const now = Date.now();
    await Promise.all([...open.values()].map((begin) => writer.append(interruptedRecord(begin, now))));
    return { spool: new AuditSpool(writer, options.context), recovery: { ...report, interrupted: open.size, backlog: unshipped + open.size } };
  }

  get writable(): boolean {
    return this.writer.writable;
  }

  begin(tx: Transaction): Promise<void> {
    return this.writer.append(encodeAuditRecord(tx, 1, this.context)).catch((err: Error) => {
      this.count(err);
      throw err;
    });
  }

  /**
   * Into the file before `then` runs (the proxy ends the reply there, so a process kill
   * cannot lose the record of a completed reply); durable with the next group.
   */
  finish(tx: Transaction, then?: () => void): void {
    this.writer.appendWritten(encodeAuditRecord(tx, 2, this.context), (err) => {
      if (err) this.count(err);
      then?.();
    });
  }

  private count(err: Error): void {
    if (err instanceof SpoolTimeoutError && err.pending) this.timedOut++;
    else this.dropped++;
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}

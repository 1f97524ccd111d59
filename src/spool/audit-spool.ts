import { mkdirSync } from 'node:fs';
import { auditRecord, interruptedRecord, type AuditSink, type RecordContext } from '../audit';
import type { Transaction } from '../transaction';
import { recoverSpool, scanSegment, type RecoveryReport } from './recovery';
import { SpoolTimeoutError, SpoolWriter } from './spool-writer';

export interface AuditSpoolOptions {
  dir: string;
  segmentBytes: number;
  maxBytes: number;
  deadlineMs: number;
  context: RecordContext;
}

export interface AuditSpoolRecovery extends RecoveryReport {
  /** Transactions in flight when the gateway stopped: now recorded as `interrupted`. */
  interrupted: number;
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
    const report = recoverSpool(options.dir);
    const open = new Map<string, Record<string, string | number>>();
    for (const segment of report.segments) {
      for (const { payload } of scanSegment(options.dir, segment).records) {
        const record = JSON.parse(payload.toString('utf8')) as Record<string, string | number>;
        if (record.version === 1) open.set(String(record.event_id), record);
        else open.delete(String(record.event_id));
      }
    }
    const writer = await SpoolWriter.open(
      { dir: options.dir, segmentBytes: options.segmentBytes, maxBytes: options.maxBytes, deadlineMs: options.deadlineMs },
      report.tail.segment,
      report.tail.size,
      report.totalBytes,
    );
    const now = Date.now();
    await Promise.all([...open.values()].map((begin) => writer.append(Buffer.from(JSON.stringify(interruptedRecord(begin, now))))));
    return { spool: new AuditSpool(writer, options.context), recovery: { ...report, interrupted: open.size } };
  }

  get writable(): boolean {
    return this.writer.writable;
  }

  begin(tx: Transaction): Promise<void> {
    return this.write(tx, 1);
  }

  finish(tx: Transaction): void {
    this.write(tx, 2).catch(() => {}); // counted in write()
  }

  private write(tx: Transaction, version: 1 | 2): Promise<void> {
    return this.writer.append(Buffer.from(JSON.stringify(auditRecord(tx, version, this.context)))).catch((err: Error) => {
      if (err instanceof SpoolTimeoutError && err.pending) this.timedOut++;
      else this.dropped++;
      throw err;
    });
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}

import { mkdirSync } from 'node:fs';
import {
  encodeAuditRecord,
  endFactsOf,
  END_FACTS,
  interruptedFields,
  recordIdentity,
  recordSealOf,
  wellFormed,
  type AuditSink,
  type RecordContext,
  type RecordFields,
} from '../audit';
import { CANONICAL_FORM, canonicalColumns, recordHash, type CanonicalValues, type RecoveredRecord, type Sealer } from '../seal';
import type { Transaction } from '../transaction';
import { readCheckpoint } from './checkpoint';
import { recoverSpool, type RecoveryReport } from './recovery';
import { listSegments } from './segments';
import { SpoolQueue } from './spool-queue';
import { SpoolTimeoutError, SpoolUnavailableError, SpoolWriter, type SpoolHealth } from './spool-writer';

export interface AuditSpoolOptions {
  dir: string;
  segmentBytes: number;
  maxBytes: number;
  deadlineMs: number;
  /** Group-commit window (AUDIT_GROUP_COMMIT_MS). */
  commitDelayMs: number;
  context: RecordContext;
  /** AUDIT_FAILURE_MODE=open: a request is forwarded even when its in-flight record was not written (so that record counts as dropped). */
  failOpen?: boolean;
  /** Told on every change of the spool's health (to log one line per episode). */
  onHealth?: (health: SpoolHealth, previous: SpoolHealth) => void;
  /** Told when a start-up recovery that had failed (the disk) finally ran. */
  onDeferredRecovery?: (recovery: AuditSpoolRecovery) => void;
  /**
   * Seals the final records (README: Tamper evidence): each gets its sequence number here,
   * as it is handed to the writer; recovery gives it the sealed records the spool holds.
   */
  sealer?: Sealer;
}

export interface AuditSpoolRecovery extends RecoveryReport {
  /** Transactions in flight when the gateway stopped: now recorded as `interrupted`. */
  interrupted: number;
  /** Records on disk not yet shipped (after the checkpoint); the `interrupted` ones are counted as written when they are. */
  backlog: number;
}

/**
 * The audit sink on the spool: a transaction's records as JSON lines in checksummed,
 * fsync'd segments. Counts what it could not keep: `dropped` (never written, and never
 * will be) and `timedOut` (not durable within the deadline; such a record may still
 * land, and is then shipped like any other).
 *
 * What `dropped` counts, so that a refused request counts once: the in-flight record of
 * a request forwarded without it (open mode), and any record given up on (held in memory
 * past the hold's size, or still held when the gateway stopped). The in-flight record of
 * a request refused for want of it (closed mode) is not dropped: that request was never
 * forwarded, and its refusal's final record tells the whole story.
 */
export class AuditSpool implements AuditSink {
  private beginsDropped = 0;
  timedOut = 0;
  /** Set when start-up recovery had to wait for the disk: filled in when it runs. */
  private lateRecovery: AuditSpoolRecovery | null = null;
  /** The spool as its shipper sees it: batches to read, and acknowledge() once they are stored. */
  readonly queue: SpoolQueue;

  private constructor(
    dir: string,
    readonly writer: SpoolWriter,
    private readonly context: RecordContext,
    private readonly failOpen: boolean,
    private readonly sealer: Sealer | null,
  ) {
    this.queue = new SpoolQueue(dir, writer);
    if (sealer !== null) this.queue.retain((needsRoom) => sealer.retainFrom(needsRoom));
  }

  /**
   * Recovers the spool (cuts torn tails), then closes every transaction that was in
   * flight at the last stop: its begin record has no final record, so one is written
   * now, with outcome `interrupted`. Never fails for the disk: when the spool cannot be
   * read, cut or written (ENOSPC, EPERM, EIO), the spool starts `failing` (the failure
   * mode applies) and its probe finishes the recovery once the disk allows.
   * `recovery` is null when it was postponed (onDeferredRecovery reports it later).
   */
  static async open(options: AuditSpoolOptions): Promise<{ spool: AuditSpool; recovery: AuditSpoolRecovery | null }> {
    const sealer = options.sealer ?? null;
    const writerOptions = {
      dir: options.dir,
      segmentBytes: options.segmentBytes,
      maxBytes: options.maxBytes,
      deadlineMs: options.deadlineMs,
      commitDelayMs: options.commitDelayMs,
      onHealth: options.onHealth,
      onSettled: sealer === null ? undefined : (seq: number, stored: boolean, segment: number) => sealer.settled(seq, stored, segment),
    };
    let found: ReturnType<typeof recoverTransactions>;
    try {
      found = recoverTransactions(options.dir);
    } catch (err) {
      let spool: AuditSpool | null = null;
      const writer = SpoolWriter.deferred(writerOptions, err, () => {
        const late = recoverTransactions(options.dir);
        spool!.lateRecovery = late.recovery;
        options.onDeferredRecovery?.(late.recovery);
        // Until now the chain could not be continued (its last records are in the spool): records finished meanwhile went unsealed.
        sealer?.resume(late.recovered);
        const sealed = late.interrupted.map((r) => sealInterrupted(r, sealer, late.recovery.tail.segment));
        return { ...late.recovery.tail, totalBytes: late.recovery.totalBytes, records: sealed.map((r) => r.line), seqs: sealed.map((r) => r.seq) };
      });
      spool = new AuditSpool(options.dir, writer, options.context, options.failOpen ?? false, sealer);
      return { spool, recovery: null };
    }
    sealer?.resume(found.recovered);
    const writer = await SpoolWriter.open(writerOptions, found.recovery.tail.segment, found.recovery.tail.size, found.recovery.totalBytes);
    // Into the file before traffic (held in memory if the disk refuses them; written when it recovers), each sealed.
    await Promise.all(
      found.interrupted.map((record) => {
        const { line, seq } = sealInterrupted(record, sealer, writer.currentSegment);
        return new Promise<void>((resolve) => writer.appendWritten(line, () => resolve(), true, seq));
      }),
    );
    return { spool: new AuditSpool(options.dir, writer, options.context, options.failOpen ?? false, sealer), recovery: found.recovery };
  }

  get writable(): boolean {
    return this.writer.writable;
  }

  /** Records never written and never to be (see the class comment). */
  get dropped(): number {
    return this.beginsDropped + this.writer.recordsDiscarded;
  }

  /** A postponed start-up recovery's report, once it ran. */
  get deferredRecovery(): AuditSpoolRecovery | null {
    return this.lateRecovery;
  }

  begin(tx: Transaction, done: (err?: Error) => void): void {
    this.writer.append(encodeAuditRecord(tx, 1, this.context), (err?: Error) => {
      if (err === undefined)
        tx.auditBegun = true; // durable: the final record need carry only the end's facts
      else if (err instanceof SpoolTimeoutError && err.pending) this.timedOut++;
      // Held records are written later; in closed mode the request is refused and its final record covers it.
      else if (this.failOpen && !(err instanceof SpoolUnavailableError && err.held)) this.beginsDropped++;
      // The writer calls a whole group's waiters in one loop: a throw here must not leave the others waiting.
      try {
        done(err);
      } catch (thrown) {
        process.nextTick(() => {
          throw thrown;
        });
      }
    });
  }

  /**
   * Into the file before `then` runs (the proxy ends the reply there, so a process kill
   * cannot lose the record of a completed reply); durable with the next group. When the
   * spool cannot take it, it is held in memory and written first when the disk recovers:
   * the consumer's reply completes, and its transaction is closed by this record, never
   * left to be recorded `interrupted` (unless the gateway stops before the disk returns).
   */
  finish(tx: Transaction, then?: () => void): void {
    // A refusal reached no provider: its record yields hold space to those of forwarded replies.
    const sealer = this.sealer;
    // The transaction's end was taken just now: it stands for the clock (no second reading).
    const seal = sealer === null ? null : sealer.next(this.writer.currentSegment, Math.floor(tx.completedAt));
    // Its begin record is durable in the spool (and precedes this one): the end's facts only, merged by the store.
    // Otherwise (a refusal, or a begin that failed, timed out or is held) the record is complete.
    const line = encodeAuditRecord(tx, tx.auditBegun ? END_FACTS : 2, this.context, seal);
    if (seal === null) return this.writer.appendWritten(line, () => then?.(), tx.outcome !== 'denied');
    sealer!.keep(seal);
    this.writer.appendWritten(line, () => then?.(), tx.outcome !== 'denied', seal.seq);
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}

/**
 * One pass over the spool: cuts a torn tail, pairs begin and final records, and counts
 * the backlog after the checkpoint. Throws a file-system error as it is.
 */
function recoverTransactions(dir: string): { recovery: AuditSpoolRecovery; interrupted: Interrupted[]; recovered: RecoveredRecord[] } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const checkpoint = readCheckpoint(dir, listSegments(dir));
  const open = new Map<string, Buffer>();
  const recovered: RecoveredRecord[] = [];
  let unshipped = 0;
  const report = recoverSpool(dir, (segment, payload, end) => {
    const { id, version } = recordIdentity(payload);
    if (version === 1) open.set(id, Buffer.from(payload));
    else {
      open.delete(id);
      // Sealed final records: the sealer seals again those after the seal file's last seal.
      const seal = recordSealOf(payload);
      if (seal !== null) recovered.push({ chain: seal.chain, period: seal.period, seq: seal.seq, hash: seal.hash, segment });
    }
    if (segment > checkpoint.segment || (segment === checkpoint.segment && end > checkpoint.offset)) unshipped++;
  });
  const now = Date.now();
  const interrupted = [...open.values()].map((begin) => ({ fields: interruptedFields(begin, now), begin }));
  return { recovery: { ...report, interrupted: open.size, backlog: unshipped }, interrupted, recovered };
}

/** A transaction cut off by a stop: its begin record, and its final record (complete) to write. */
interface Interrupted {
  fields: RecordFields;
  begin: Buffer;
}

/**
 * An interrupted record as its JSON line, sealed when `seal` is given: its free text made
 * well-formed (as the encoder writes it), the seal fields set last (where recordSealOf reads them), and
 * record_hash computed over the canonical form of the values as ClickHouse will read them.
 * Written as end facts (version 3): only what differs from its begin record, which is in the
 * spool before it (the store merges the two into the complete record hashed here).
 */
function sealInterrupted(interrupted: Interrupted, sealer: Sealer | null, segment: number): { line: string; seq: number } {
  const record = interrupted.fields;
  const endFacts = () => JSON.stringify(endFactsOf(record, JSON.parse(interrupted.begin.toString('utf8')) as RecordFields));
  const seal = sealer === null ? null : sealer.next(segment);
  if (sealer === null || seal === null) return { line: endFacts(), seq: 0 };
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (typeof v === 'string') record[key] = wellFormed(v);
  }
  // Hashed with the current canonical form, which the row says. A begin record written
  // before a column existed gets it now, with the column's default, so the row holds what
  // was hashed; then the seal fields are taken out and set again, so they come last
  // (recordSealOf reads them at the line's end) after any column added here.
  record.canonical_form = CANONICAL_FORM;
  const columns = canonicalColumns(CANONICAL_FORM);
  for (const [name, kind] of columns)
    if (record[name] === undefined) record[name] = kind === 'text' ? '' : kind === 'list' ? [] : name === 'upstream_connect_ms' ? -1 : 0;
  for (const key of ['seal_chain', 'seal_period', 'seq', 'record_hash']) delete record[key];
  record.seal_chain = seal.chain;
  record.seal_period = seal.period;
  record.seq = seal.seq;
  const values: Record<string, CanonicalValues[string]> = { canonical_form: CANONICAL_FORM };
  for (const [name, kind] of columns) {
    const v = record[name];
    values[name] = kind === 'time' ? Date.parse(String(v)) : kind === 'number' ? Number(v) : kind === 'list' ? (Array.isArray(v) ? v : []) : String(v);
  }
  seal.hash = recordHash(values);
  record.record_hash = seal.hash;
  sealer.keep(seal);
  return { line: endFacts(), seq: seal.seq };
}

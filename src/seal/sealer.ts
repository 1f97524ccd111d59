import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../errors';
import type { Logger } from '../log';
import { GENESIS_DIGEST, signSeal, type Seal, type SealBody } from './seal-format';
import { SEAL_FILE, SealFile } from './seal-file';
import type { SigningKey } from './signing-key';

/**
 * A final record's place in the chain, handed out by Sealer.next(); the encoder fills in
 * `hash`, and Sealer.keep() takes it. One object, reused for every record: it lives only
 * between next() and keep(), in one synchronous step (nothing allocated per record).
 */
export interface SealStamp {
  chain: string;
  period: number;
  seq: number;
  hash: string;
}

/** A sealed final record found in the spool at start-up (after the chain's last seal, it is sealed again now). */
export interface RecoveredRecord {
  chain: string;
  period: number;
  seq: number;
  hash: string;
  segment: number;
}

/** Where seals are inserted besides the file ({db}.audit_seals): AuditStore, through app-audit. */
export interface SealStore {
  insertSeals(seals: readonly Seal[]): Promise<void>;
  /** The chain's latest period_start (epoch ms) in the table, or null when it has none. */
  latestSealPeriod(chain: string): Promise<number | null>;
}

const PENDING = 0;
const STORED = 1;
const DROPPED = 2;

interface Period {
  start: number;
  end: number;
  /** Monotonic time when it opened: a period also ends after its length by this clock (a wall clock set back cannot stall it); -1 once so ended. */
  openedAt: number;
  firstSeq: number;
  /** Record hashes (hex) by seq - firstSeq ('' for one dropped). */
  hashes: string[];
  /** By seq - firstSeq: PENDING, STORED or DROPPED (grown by doubling). */
  states: Uint8Array;
  pending: number;
  /** The lowest spool segment holding one of its records (Infinity: none): kept until the period's seal is in the file. */
  keepSegment: number;
}

export interface SealerOptions {
  dataDir: string;
  key: SigningKey;
  periodMs: number;
  instance: string;
  log: Logger;
}

/** Seals not inserted yet are retried with this backoff (doubling). */
const STORE_RETRY_MIN_MS = 1000;
const STORE_RETRY_MAX_MS = 30_000;
/** Most seals one insert carries. */
const STORE_BATCH = 500;

const iso = (ms: number) => new Date(ms).toISOString();

/** recordsRoot() of seal-format, in chunks of hex decoded at once (a period may hold hundreds of thousands). */
function rootOf(hashes: readonly string[]): string {
  const h = createHash('sha256');
  for (let i = 0; i < hashes.length; i += 4096) h.update(Buffer.from(hashes.slice(i, i + 4096).join(''), 'hex'));
  return h.digest('hex');
}

/**
 * The writer side of tamper evidence (README: Tamper evidence). Hands every final record
 * its place in the chain (sequence number, seal period), learns when each is settled
 * (written to the spool, or given up on), and seals each period once it has ended and all
 * its records are settled: a signed digest over its records' hashes and the previous seal.
 * A seal goes to the seal file (appended, fsync'd), to one log line, and to
 * `{db}.audit_seals`, in that order of trust; nothing of it runs on the request path but
 * next() (a counter and an array push).
 */
export class Sealer {
  chain = '';
  private nextSeq = 1;
  private previousDigest = GENESIS_DIGEST;
  /** End of the last seal (epoch ms): a new period never starts before it. */
  private sealedThrough = 0;
  /** Periods not sealed yet, oldest first; the last one is open (taking records) while running. */
  private readonly periods: Period[] = [];
  private resumed = false;
  private readonly stamp: SealStamp = { chain: '', period: 0, seq: 0, hash: '' };
  /** The highest sequence number written to the spool, and its segment. */
  private readonly highestWritten = { seq: 0, segment: Infinity };
  /** The last sequence number whose seal is in the file. */
  private sealedSeq = 0;
  private stopped = false;
  /** Seals made but not yet in the file (a disk error: tried again each tick), in order, with the segment each keeps. */
  private readonly unfiled: Array<{ seal: Seal; keepSegment: number }> = [];
  private filing = false;
  private fileFailing: string | null = null;
  /** Seals in the file, not yet in the table. */
  private unstored: Seal[] = [];
  private storing = false;
  private storeFailing: string | null = null;
  private storeRetryAt = 0;
  private storeRetryMs = STORE_RETRY_MIN_MS;
  private store: SealStore | null = null;
  /** The file's seals after the table's latest are queued once the store is up (catch-up after a restart). */
  private caughtUp = false;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  /** Counters for metrics and tests. */
  sealsMade = 0;
  sealsStored = 0;

  private constructor(
    private readonly options: SealerOptions,
    private readonly file: SealFile,
    private readonly last: Seal | null,
  ) {}

  /** Reads the seal file's last seal (cutting a torn last line). Throws GW_ERR_SEAL_FILE when it cannot be read. */
  static open(options: SealerOptions): Sealer {
    const path = join(options.dataDir, SEAL_FILE);
    let opened: ReturnType<typeof SealFile.open>;
    try {
      opened = SealFile.open(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      // The chain cannot be continued without its last seal: start-up stops, saying which file and why.
      const why = code === 'GW_ERR_SEAL_FILE_CORRUPT' ? (err as Error).message : code;
      throw new GatewayError('GW_ERR_SEAL_FILE', `cannot read the audit seal file ${path} (${why}): the seal chain continues from its last line`, {
        cause: err,
      });
    }
    if (opened.cutBytes > 0)
      options.log.warn({ file: opened.file.path, cut_bytes: opened.cutBytes }, 'audit seal file: torn last line cut (a write cut short by a stop)');
    return new Sealer(options, opened.file, opened.last);
  }

  get periodMs(): number {
    return this.options.periodMs;
  }

  /**
   * The lowest spool segment that holds a record not yet sealed in the file (Infinity:
   * none): SpoolQueue keeps it and those after it. When the spool needs room, only the
   * segment of the highest sequence number written: after a crash the sequence then still
   * continues after every number that reached the spool (never reusing one that may be in
   * the table), though the shipped records in between can only be sealed as dropped.
   */
  retainFrom(needsRoom = false): number {
    if (needsRoom) return this.highestWritten.seq > this.sealedSeq ? this.highestWritten.segment : Infinity;
    let min = Infinity;
    for (const p of this.periods) if (p.keepSegment < min) min = p.keepSegment;
    for (const u of this.unfiled) if (u.keepSegment < min) min = u.keepSegment;
    return min;
  }

  /**
   * Continues the chain after the file's last seal, with the sealed final records the
   * spool holds (read at recovery): those after the last seal are sealed again, in their
   * own periods; a sequence number missing among them (a record lost with the process,
   * such as one held in memory while the disk failed) is listed as dropped. A new file
   * takes the chain of the spool's records, or starts a new chain.
   */
  resume(recovered: readonly RecoveredRecord[]): void {
    if (this.resumed) return;
    this.resumed = true;
    const last = this.last;
    let chain = last?.chain ?? '';
    if (chain === '') {
      // No seal yet: a chain whose records the spool holds from seq 1 on was cut off before its
      // first seal, and is continued. Records of a chain whose seals are gone (the file lost)
      // cannot be sealed by a new file: a new chain starts, and says so.
      let spoolChain = '';
      for (const r of recovered) if (r.chain !== '') spoolChain = r.chain;
      if (spoolChain !== '' && recovered.some((r) => r.chain === spoolChain && r.seq === 1)) chain = spoolChain;
      else if (spoolChain !== '')
        this.options.log.error(
          { chain: spoolChain, file: this.file.path },
          'audit seals: the seal file is missing or empty but the spool holds records of a sealed chain; a new chain starts (the old chain ends at its last seal in audit_seals)',
        );
    }
    this.chain = chain === '' ? randomUUID() : chain;
    const lastSeq = last?.last_seq ?? 0;
    this.sealedSeq = lastSeq;
    this.previousDigest = last?.digest ?? GENESIS_DIGEST;
    this.sealedThrough = last === null ? 0 : Date.parse(last.period_end);
    const bySeq = new Map<number, RecoveredRecord>();
    let foreign = 0;
    for (const r of recovered) {
      if (r.chain !== this.chain) foreign++;
      else if (r.seq > lastSeq) bySeq.set(r.seq, r);
    }
    if (foreign > 0)
      this.options.log.warn({ chain: this.chain, records: foreign }, 'audit seals: records of another chain found in the spool are not sealed by this one');
    const seqs = [...bySeq.keys()].sort((a, b) => a - b);
    let expected = lastSeq + 1;
    let period: Period | null = null;
    for (const seq of seqs) {
      const r = bySeq.get(seq)!;
      if (period === null || r.period !== period.start) {
        // Each record carries its period's start: the period is rebuilt as it was, and ends where the next begins.
        if (period !== null && r.period > period.start) period.end = Math.min(period.end, r.period);
        period = this.newPeriod(r.period, expected);
        this.periods.push(period);
      }
      // Sequence numbers missing before this one: given up on (never written).
      for (; expected < seq; expected++) {
        this.add(period, '', DROPPED);
      }
      this.add(period, r.hash, STORED);
      if (r.segment < period.keepSegment) period.keepSegment = r.segment;
      if (seq > this.highestWritten.seq) Object.assign(this.highestWritten, { seq, segment: r.segment });
      expected = seq + 1;
    }
    this.nextSeq = expected;
    if (seqs.length > 0)
      this.options.log.info(
        { chain: this.chain, records: seqs.length, first_seq: seqs[0], last_seq: expected - 1 },
        'audit seals: unsealed records recovered from the spool',
      );
    this.openPeriod(Date.now());
  }

  /** A period starting at `start` (epoch ms) and ending at the next boundary of AUDIT_SEAL_PERIOD_MS. */
  private newPeriod(start: number, firstSeq: number): Period {
    const p = this.options.periodMs;
    return {
      start,
      end: Math.floor(start / p) * p + p,
      openedAt: performance.now(),
      firstSeq,
      hashes: [],
      states: new Uint8Array(64),
      pending: 0,
      keepSegment: Infinity,
    };
  }

  /**
   * Whether a period's time is up: by the wall clock, or (checked by the tick, not per
   * record) by the monotonic one, so that a wall clock set back cannot hold a period open.
   */
  private ended(p: Period, now: number): boolean {
    return p.end <= now || p.openedAt < 0;
  }

  /**
   * The open period at `now`: the last one, unless its time is up; then the next one opens,
   * starting at the current boundary of AUDIT_SEAL_PERIOD_MS but never before the end of the
   * one before it (periods never overlap, and never go backwards with the clock).
   */
  private openPeriod(now: number): Period {
    const last = this.periods.length > 0 ? this.periods[this.periods.length - 1] : null;
    if (last !== null && !this.ended(last, now)) return last;
    const floor = Math.floor(now / this.options.periodMs) * this.options.periodMs;
    const period = this.newPeriod(Math.max(floor, last?.end ?? 0, this.sealedThrough), this.nextSeq);
    this.periods.push(period);
    return period;
  }

  /**
   * The next sequence number, in the current period, for a final record about to be
   * written to the spool's `segment`; `now` is the wall-clock time (the transaction's end,
   * just taken). Null once stopped (or before resume()): the record is written unsealed.
   */
  next(segment: number, now = Date.now()): SealStamp | null {
    if (!this.resumed || this.stopped) return null;
    const period = this.openPeriod(now);
    const stamp = this.stamp;
    stamp.chain = this.chain;
    stamp.period = period.start;
    stamp.seq = this.nextSeq++;
    stamp.hash = '';
    this.add(period, '', PENDING);
    period.pending++;
    if (segment < period.keepSegment) period.keepSegment = segment;
    return stamp;
  }

  /** The encoder has filled in the stamp's hash: kept for the period's records_root. */
  keep(stamp: SealStamp): void {
    const p = this.periods[this.periods.length - 1];
    if (p !== undefined && stamp.seq >= p.firstSeq) p.hashes[stamp.seq - p.firstSeq] = stamp.hash;
  }

  private add(p: Period, hash: string, state: number): void {
    const at = p.hashes.length;
    if (at === p.states.length) {
      const grown = new Uint8Array(p.states.length * 2);
      grown.set(p.states);
      p.states = grown;
    }
    p.states[at] = state;
    p.hashes.push(hash);
  }

  /** The record of `seq` is in the spool's `segment` (`stored`), or was given up on (never written). */
  settled(seq: number, stored: boolean, segment = Infinity): void {
    if (stored && seq > this.highestWritten.seq) {
      this.highestWritten.seq = seq;
      this.highestWritten.segment = segment;
    }
    for (let i = this.periods.length - 1; i >= 0; i--) {
      const p = this.periods[i];
      if (seq < p.firstSeq) continue;
      const at = seq - p.firstSeq;
      if (at >= p.hashes.length || p.states[at] !== PENDING) return;
      p.states[at] = stored ? STORED : DROPPED;
      p.pending--;
      return;
    }
  }

  /** Starts the tick: periods are closed and sealed, the file and the table brought up to date. */
  start(): void {
    if (this.timer !== null) return;
    const every = Math.min(1000, Math.max(50, Math.floor(this.options.periodMs / 10)));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
  }

  /** The store answers (its schema is ready): seals go into the table from now on. */
  storeReady(store: SealStore): void {
    this.store = store;
  }

  /** One pass: seal what can be, file it, store it. One at a time. */
  tick(): Promise<void> {
    if (this.ticking === null) {
      this.ticking = this.work().finally(() => {
        this.ticking = null;
      });
    }
    return this.ticking;
  }

  private async work(): Promise<void> {
    const open = this.periods.length > 0 ? this.periods[this.periods.length - 1] : null;
    if (open !== null && open.openedAt >= 0 && performance.now() - open.openedAt >= open.end - open.start) open.openedAt = -1; // ended by the monotonic clock
    if (this.resumed && !this.stopped) this.openPeriod(Date.now());
    const before = this.sealsMade;
    this.sealReady(false);
    if (this.sealsMade !== before) this.options.log.flush(); // the log's copy of the head leaves now, not with the next batch
    await this.fileSeals();
    await this.storeSeals();
  }

  /** Seals the periods that have ended and are settled, oldest first (a later one waits for an earlier one). */
  private sealReady(all: boolean): void {
    while (this.periods.length > 0) {
      const p = this.periods[0];
      // The last period is the open one (work() opens a successor once its time is up).
      if ((!all && this.periods.length === 1) || p.pending > 0) return;
      this.periods.shift();
      this.seal(p);
    }
  }

  private seal(p: Period): void {
    const dropped: number[] = [];
    for (let i = 0; i < p.hashes.length; i++) if (p.states[i] !== STORED) dropped.push(p.firstSeq + i);
    const hashes = dropped.length === 0 ? p.hashes : p.hashes.filter((_, i) => p.states[i] === STORED);
    const body: SealBody = {
      chain: this.chain,
      instance: this.options.instance,
      period_start: iso(p.start),
      period_end: iso(p.end),
      first_seq: p.firstSeq,
      last_seq: p.firstSeq + p.hashes.length - 1,
      records: hashes.length,
      dropped,
      records_root: rootOf(hashes),
      previous_digest: this.previousDigest,
      sealed_at: iso(Date.now()),
      key_id: this.options.key.keyId,
    };
    const seal = signSeal(body, this.options.key.privateKey);
    this.previousDigest = seal.digest;
    this.sealedThrough = Math.max(this.sealedThrough, p.end);
    this.sealsMade++;
    this.unfiled.push({ seal, keepSegment: p.keepSegment });
    // The log pipeline's independent copy of the chain's head: nothing from any record.
    this.options.log.info(
      {
        chain: seal.chain,
        period_start: seal.period_start,
        first_seq: seal.first_seq,
        last_seq: seal.last_seq,
        records: seal.records,
        dropped: dropped.length,
        digest: seal.digest,
        key_id: seal.key_id,
      },
      'audit period sealed',
    );
  }

  /** Appends the seals not yet in the file; on a disk error keeps them (and the spool segments they cover) for the next tick. */
  private async fileSeals(): Promise<void> {
    if (this.filing) return;
    this.filing = true;
    try {
      if (this.unfiled.length === 0) return;
      const batch = this.unfiled.slice();
      try {
        await this.file.append(batch.map((u) => u.seal));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        if (this.fileFailing !== code) {
          this.options.log.error(
            { code, file: this.file.path, unfiled: this.unfiled.length },
            `audit seal file not writable (${code}): seals are kept in memory and written when it recovers; the spool keeps their records meanwhile`,
          );
          this.options.log.flush();
        }
        this.fileFailing = code;
        return;
      }
      this.unfiled.splice(0, batch.length);
      for (const u of batch) this.unstored.push(u.seal);
      this.sealedSeq = batch[batch.length - 1].seal.last_seq;
      if (this.fileFailing !== null) {
        this.options.log.warn({ code: this.fileFailing, file: this.file.path, written: batch.length }, 'audit seal file writable again: kept seals written');
        this.fileFailing = null;
      }
    } finally {
      this.filing = false;
    }
  }

  /** Inserts filed seals into the table, at least once: a failure is retried with backoff, never on the request path. */
  private async storeSeals(): Promise<void> {
    const store = this.store;
    if (store === null || this.storing || !this.resumed || Date.now() < this.storeRetryAt) return;
    this.storing = true;
    try {
      if (!this.caughtUp) {
        const latest = await store.latestSealPeriod(this.chain);
        const missing = this.file.readAfter(this.chain, latest);
        const queued = new Set(this.unstored.map((s) => s.digest));
        this.unstored = [...missing.filter((s) => !queued.has(s.digest)), ...this.unstored];
        this.caughtUp = true;
      }
      while (this.unstored.length > 0) {
        const batch = this.unstored.slice(0, STORE_BATCH);
        await store.insertSeals(batch);
        this.unstored.splice(0, batch.length);
        this.sealsStored += batch.length;
      }
      if (this.storeFailing !== null) this.options.log.warn({ code: this.storeFailing }, 'audit seals: the store takes seals again');
      this.storeFailing = null;
      this.storeRetryMs = STORE_RETRY_MIN_MS;
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERROR';
      if (this.storeFailing === null)
        this.options.log.warn({ code, unstored: this.unstored.length }, `audit seals not inserted, retrying: ${(err as Error).message}`);
      this.storeFailing = code;
      this.storeRetryAt = Date.now() + this.storeRetryMs;
      this.storeRetryMs = Math.min(STORE_RETRY_MAX_MS, this.storeRetryMs * 2);
    } finally {
      this.storing = false;
    }
  }

  /**
   * At the gateway's stop, after the spool closed (so every record is settled): the open
   * period ends now and is sealed with the others, the file is written, and the table is
   * tried once. What is not filed is sealed again from the spool at the next start.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.ticking !== null) await this.ticking;
    const open = this.periods.length > 0 ? this.periods[this.periods.length - 1] : null;
    // The open period is cut short: the next start begins a new one where this one ends.
    if (open !== null && open.end > Date.now()) open.end = Math.max(open.start + 1, Date.now());
    this.sealReady(true);
    this.storeRetryAt = 0;
    await this.fileSeals();
    await this.storeSeals();
  }
}

import type { KeyObject } from 'node:crypto';
import { EMPTY_ROOT, GENESIS_DIGEST, checkSeal, keyId, type Seal } from './seal-format';

/**
 * The judgement of `verify`, as pure functions over what the store holds: the seals and,
 * per (chain, period), an aggregate of the stored final records. The queries that fetch
 * them live in src/clickhouse/audit-verify.ts; nothing here reads a store or a clock.
 */

export type BreakKind = 'missing' | 'altered' | 'extra' | 'digest_missing' | 'digest_invalid';

/** The first place where the stored trail and its seals disagree. */
export interface VerifyBreak {
  readonly chain: string;
  /** The period's start, epoch ms. */
  readonly periodMs: number;
  readonly kind: BreakKind;
  readonly eventId?: string;
  readonly seq?: number;
  /**
   * For digest_invalid, why: the digest is not its body's (`digest_mismatch`), the
   * signature is not the key's (`bad_signature`), or the seal names another key
   * (`other_key`, with `keyId`); or two different seals claim the period (`two_seals`).
   */
  readonly reason?: 'digest_mismatch' | 'bad_signature' | 'other_key' | 'two_seals';
  readonly keyId?: string;
}

/** The stored final records of one (chain, period), aggregated next to the data. */
export interface PeriodRows {
  readonly chain: string;
  readonly periodMs: number;
  readonly count: number;
  readonly minSeq: number;
  readonly maxSeq: number;
  readonly distinctSeqs: number;
  /** Records whose stored record_hash is not the hash of their stored values. */
  readonly badHashes: number;
  /** SHA-256 over the stored record hashes (32 bytes each) in sequence order. */
  readonly root: string;
}

/** A seal as read back, with its period start and end as epoch ms (the body keeps ISO text). */
export interface StoredSeal extends Seal {
  readonly periodStartMs: number;
  readonly periodEndMs: number;
}

export interface VerifyInput {
  /** This gateway's key. */
  readonly publicKey: KeyObject;
  /** Other gateways' keys trusted as well, by key id (AUDIT_VERIFY_KEYS_FILE). */
  readonly otherKeys?: ReadonlyMap<string, KeyObject>;
  /** Seals whose period starts in the range, any order, duplicates allowed. */
  readonly seals: readonly StoredSeal[];
  /** Per chain, its last seal before the range (to check the first link). */
  readonly before: ReadonlyMap<string, StoredSeal>;
  /** Per chain, its first seal after the range (to check the last link, and to know rows there should have been sealed). */
  readonly after: ReadonlyMap<string, StoredSeal>;
  /** Aggregates of stored final records (seq > 0) whose period starts in the range. */
  readonly rows: readonly PeriodRows[];
}

/** A period whose rows disagree with its seal (or that has rows and no seal): the drill-down names the kind. */
export interface Suspect {
  readonly chain: string;
  readonly periodMs: number;
  /** The period's seal; null when the rows have no seal although a later one exists. */
  readonly seal: StoredSeal | null;
}

/**
 * One chain's share of a verify: a chain is one gateway's DATA_DIR (several instances
 * sharing one ClickHouse each write their own), so this is the verdict per instance.
 * `instance` is the host name its latest seal names (instances on one host share it: the
 * chain ID is what tells them apart); `broken` when the chain holds a finding, whether or
 * not it is the first break across chains.
 */
export interface ChainJudgement {
  readonly chain: string;
  readonly instance: string;
  readonly periodsChecked: number;
  readonly recordsChecked: number;
  readonly recordsUnsealed: number;
  readonly broken: boolean;
}

export interface Judgement {
  /** Per chain, in chain order. */
  readonly chains: readonly ChainJudgement[];
  readonly periodsChecked: number;
  readonly recordsChecked: number;
  /** Records in periods after the chain's last seal: not sealed yet, so not judged. */
  readonly recordsUnsealed: number;
  /** The first break, when the seals alone name it. */
  readonly firstBreak: VerifyBreak | null;
  /** Or the first period whose rows disagree: classify it with classifyRows over its records. */
  readonly suspect: Suspect | null;
}

type Finding = { kind: 'break'; brk: VerifyBreak } | { kind: 'suspect'; suspect: Suspect };

const at = (f: Finding) => (f.kind === 'break' ? f.brk.periodMs : f.suspect.periodMs);

/**
 * Walks each chain in period order. For each seal: its signature (digest_invalid), its
 * link to the previous seal (digest_missing: a seal between them is gone), sequence
 * continuity (a gap: missing), then its period's rows against it. Rows in a period no
 * seal covers, with a later seal in the chain, are extra (or the trace of a deleted seal,
 * when the next link is broken). Rows after the chain's last seal are unsealed.
 * The first finding across chains (earliest period, then chain) wins.
 */
export function judgePeriods(input: VerifyInput): Judgement {
  const sealsByChain = new Map<string, StoredSeal[]>();
  for (const s of input.seals) {
    const list = sealsByChain.get(s.chain) ?? [];
    list.push(s);
    sealsByChain.set(s.chain, list);
  }
  const rowsByChain = new Map<string, Map<number, PeriodRows>>();
  for (const r of input.rows) {
    const m = rowsByChain.get(r.chain) ?? new Map<number, PeriodRows>();
    m.set(r.periodMs, r);
    rowsByChain.set(r.chain, m);
  }
  const chains = [...new Set([...sealsByChain.keys(), ...rowsByChain.keys(), ...input.before.keys(), ...input.after.keys()])].sort();
  let periodsChecked = 0;
  let recordsChecked = 0;
  let recordsUnsealed = 0;
  let first: Finding | null = null;
  const perChain: ChainJudgement[] = [];
  for (const chain of chains) {
    const seals = sealsByChain.get(chain) ?? [];
    const r = walkChain(chain, seals, rowsByChain.get(chain) ?? new Map(), input);
    const latest = [input.before.get(chain), ...seals, input.after.get(chain)].reduce<StoredSeal | undefined>(
      (a, s) => (s !== undefined && (a === undefined || s.periodStartMs >= a.periodStartMs) ? s : a),
      undefined,
    );
    perChain.push({
      chain,
      instance: latest?.instance ?? '',
      periodsChecked: r.periodsChecked,
      recordsChecked: r.recordsChecked,
      recordsUnsealed: r.recordsUnsealed,
      broken: r.finding !== null,
    });
    periodsChecked += r.periodsChecked;
    recordsChecked += r.recordsChecked;
    recordsUnsealed += r.recordsUnsealed;
    if (r.finding !== null && (first === null || at(r.finding) < at(first))) first = r.finding; // chains sorted: ties keep the first
  }
  return {
    chains: perChain,
    periodsChecked,
    recordsChecked,
    recordsUnsealed,
    firstBreak: first?.kind === 'break' ? first.brk : null,
    suspect: first?.kind === 'suspect' ? first.suspect : null,
  };
}

function walkChain(chain: string, seals: StoredSeal[], rows: Map<number, PeriodRows>, input: VerifyInput) {
  let periodsChecked = 0;
  let recordsChecked = 0;
  let recordsUnsealed = 0;
  let finding: Finding | null = null;
  const found = (f: Finding) => {
    if (finding === null) finding = f;
  };
  const brk = (periodMs: number, kind: BreakKind, extra: Pick<VerifyBreak, 'seq' | 'reason' | 'keyId'> = {}) =>
    found({ kind: 'break', brk: { chain, periodMs, kind, ...extra } });
  const ownKeyId = keyId(input.publicKey);
  /** A seal checked with the trusted key it names: `other_key` when it names none. */
  const sealCheck = (s: Seal) => {
    const key = s.key_id === ownKeyId ? input.publicKey : input.otherKeys?.get(s.key_id);
    if (key !== undefined) return checkSeal(s, key);
    const own = checkSeal(s, input.publicKey); // a seal whose key_id was changed in the table: its digest no longer fits
    return own === 'bad_signature' ? 'other_key' : own;
  };

  // One seal per period; identical copies (a retried insert) are one, differing ones a forgery or a double signing.
  const byPeriod = new Map<number, StoredSeal[]>();
  for (const s of seals) {
    const list = byPeriod.get(s.periodStartMs) ?? [];
    if (!list.some((o) => sameSeal(o, s))) list.push(s);
    byPeriod.set(s.periodStartMs, list);
  }
  const keys = [...new Set([...byPeriod.keys(), ...rows.keys()])].sort((a, b) => a - b);
  const before = input.before.get(chain) ?? null;
  const after = input.after.get(chain) ?? null;
  let lastSealMs = -1;
  for (const k of byPeriod.keys()) if (k > lastSealMs) lastSealMs = k;

  let prev: StoredSeal | null = before;
  let expected = before?.digest ?? GENESIS_DIGEST;
  /** Periods with rows and no seal, waiting for the next seal to say whether one was deleted (digest_missing) or they are extra. */
  let orphans: number[] = [];

  /** The link from the previous seal to `s`: its signature first, then the digest chain, then sequence continuity. */
  const link = (s: StoredSeal, atMs: number): boolean => {
    const check = sealCheck(s);
    if (check !== 'ok') {
      brk(atMs, 'digest_invalid', check === 'other_key' ? { reason: check, keyId: s.key_id } : { reason: check });
      return false;
    }
    if (s.previous_digest !== expected) {
      brk(orphans[0] ?? (prev !== null ? Math.min(prev.periodEndMs, atMs) : atMs), 'digest_missing');
      return false;
    }
    if (orphans.length > 0) found({ kind: 'suspect', suspect: { chain, periodMs: orphans[0], seal: null } });
    // Numbers run on from the previous seal's, and from 1 at the chain's first seal.
    const next = prev !== null ? prev.last_seq + 1 : s.previous_digest === GENESIS_DIGEST ? 1 : s.first_seq;
    if (s.first_seq > next) brk(prev?.periodEndMs ?? atMs, 'missing', { seq: next });
    else if (s.first_seq < next) brk(atMs, 'extra'); // the same numbers sealed twice
    return true;
  };

  for (const k of keys) {
    const list = byPeriod.get(k);
    const g = rows.get(k);
    if (list === undefined) {
      // Rows and no seal: a later seal means this period should have one.
      if (k < lastSealMs || after !== null || (prev !== null && k < prev.periodEndMs)) orphans.push(k);
      else recordsUnsealed += g!.count;
      continue;
    }
    periodsChecked++;
    recordsChecked += g?.count ?? 0;
    if (list.length > 1) {
      brk(k, 'digest_invalid', { reason: 'two_seals' });
      continue;
    }
    const s = list[0];
    link(s, k);
    orphans = [];
    if (!rowsMatch(s, g)) found({ kind: 'suspect', suspect: { chain, periodMs: k, seal: s } });
    prev = s;
    expected = s.digest;
  }
  if (after !== null && sealCheck(after) === 'ok') link(after, after.periodStartMs);
  else if (orphans.length > 0) found({ kind: 'suspect', suspect: { chain, periodMs: orphans[0], seal: null } });
  return { periodsChecked, recordsChecked, recordsUnsealed, finding: finding as Finding | null };
}

function sameSeal(a: Seal, b: Seal): boolean {
  return a.digest === b.digest && a.signature === b.signature && a.records_root === b.records_root && a.previous_digest === b.previous_digest;
}

/** Whether a period's stored records are exactly what its seal says. */
function rowsMatch(s: StoredSeal, g: PeriodRows | undefined): boolean {
  if (g === undefined) return s.records === 0 && s.records_root === EMPTY_ROOT;
  return (
    g.count === s.records && g.distinctSeqs === g.count && g.minSeq >= s.first_seq && g.maxSeq <= s.last_seq && g.badHashes === 0 && g.root === s.records_root
  );
}

/** One stored final record of a suspect period, with its hash recomputed from its stored values. */
export interface DrillRow {
  readonly seq: number;
  readonly eventId: string;
  readonly recordHash: string;
  readonly recomputed: string;
}

/**
 * Names what is wrong in a suspect period from its records (in seq order): a record whose
 * stored hash is not its values' → altered; a duplicate number, one outside the seal's
 * range or one the seal lists as dropped → extra; a number in range neither stored nor
 * dropped → missing; all present and each self-consistent but the root differs →
 * altered, hash rewritten too (no record can be named). Rows in a period with no seal → extra.
 */
export function classifyRows(suspect: Suspect, rows: readonly DrillRow[]): VerifyBreak {
  const base = { chain: suspect.chain, periodMs: suspect.periodMs };
  const s = suspect.seal;
  if (s === null) return { ...base, kind: 'extra', ...(rows.length > 0 ? { eventId: rows[0].eventId, seq: rows[0].seq } : {}) };
  const bad = rows.find((r) => r.recordHash !== r.recomputed);
  if (bad !== undefined) return { ...base, kind: 'altered', eventId: bad.eventId, seq: bad.seq };
  const dropped = new Set(s.dropped.map(Number));
  const seen = new Set<number>();
  for (const r of rows) {
    if (r.seq < s.first_seq || r.seq > s.last_seq || dropped.has(r.seq) || seen.has(r.seq)) return { ...base, kind: 'extra', eventId: r.eventId, seq: r.seq };
    seen.add(r.seq);
  }
  // Bounded by the seal's own (signed) range.
  for (let q = s.first_seq; q <= s.last_seq; q++) if (!seen.has(q) && !dropped.has(q)) return { ...base, kind: 'missing', seq: q };
  return { ...base, kind: 'altered' };
}

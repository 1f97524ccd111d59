import type { KeyObject } from 'node:crypto';
import { classifyRows, judgePeriods, keyId, recordHashSql, type PeriodRows, type StoredSeal, type VerifyBreak } from '../seal';
import { StoreConfigError } from './store-error';

/**
 * `verify` next to the data: the queries that read the seals and aggregate the stored
 * final records per (chain, period), recomputing every record's hash (in the canonical
 * form its `canonical_form` names: rows hashed with version 1 before version 2 existed
 * verify as they were) and each period's root inside ClickHouse, so only one row per
 * period crosses to the gateway. The judgement itself is src/seal/verify-periods.ts.
 *
 * Every value spliced into this SQL is an integer the gateway computed or a chain name
 * written as hex (unhex('…')): ClickHouse before 19.x has no query parameters, and the
 * same text serves both. Written for the oldest server the tests run (18.16) as well as
 * current ones: no DateTime64 functions unless the column is DateTime64.
 */

/** What verify needs of the store (AuditStore; not imported, as AuditStore uses latestSealMs from here). */
export interface VerifyStore {
  readonly database: string;
  queryRows<T>(query: string, params: Record<string, unknown>): Promise<T[]>;
}

export interface VerifyRange {
  /** Epoch ms, inclusive; undefined: from the start. */
  readonly fromMs?: number;
  /** Epoch ms, exclusive; undefined: to the end. */
  readonly toMs?: number;
}

/** One chain's verdict (one gateway DATA_DIR's): see ChainJudgement in src/seal. */
export interface ChainVerdict {
  readonly chain: string;
  readonly instance: string;
  readonly status: 'intact' | 'broken';
  readonly periodsChecked: number;
  readonly recordsChecked: number;
  readonly recordsUnsealed: number;
}

export interface VerifyResult {
  readonly status: 'intact' | 'broken';
  /** Per chain, in chain order: with several gateways on one ClickHouse, each one's own verdict. */
  readonly chains: readonly ChainVerdict[];
  readonly periodsChecked: number;
  readonly recordsChecked: number;
  readonly recordsUnsealed: number;
  readonly recordsInFlight: number;
  readonly firstBreak: VerifyBreak | null;
  readonly keyId: string;
}

/**
 * A time column as epoch milliseconds, in the column's own type: DateTime64 on current
 * servers; String holding the gateway's ISO text ("2026-11-21T07:29:13.237Z", fixed
 * layout) where the server has no DateTime64; a plain integer of epoch ms.
 */
export function millisExpr(column: string, type: string): string {
  const t = type.replace(/^LowCardinality\((.*)\)$/, '$1');
  if (t.startsWith('DateTime64')) return `toUnixTimestamp64Milli(${column})`;
  if (t === 'String') return `(toUInt64(toUnixTimestamp(parseDateTimeBestEffortOrZero(${column}))) * 1000 + toUInt64OrZero(substring(${column}, 21, 3)))`;
  if (/^U?Int64$/.test(t)) return `toUInt64(${column})`;
  throw new StoreConfigError(
    `verify: the column ${column} is ${type}, which keeps no milliseconds, so no record hash can be recomputed from it; store times as DateTime64(3, 'UTC') (or, on a server without DateTime64, as String holding the ISO 8601 text the gateway writes)`,
  );
}

/**
 * A number column as a value whose toString is the canonical form's shortest decimal:
 * itself, or as Float64 for a Decimal column. (On servers whose Float64 parsing is not
 * exact, 18.16 among them, "7.387" is stored as 7.3870000000000005: their DDL keeps the
 * gateway's 3-decimal values as Decimal64(3), which stores them exactly.)
 */
export function numberExpr(column: string, type: string): string {
  return type.startsWith('Decimal') ? `toFloat64(${column})` : column;
}

const hexLiteral = (s: string) => `unhex('${Buffer.from(s, 'utf8').toString('hex')}')`;
const int = (n: number) => String(Math.trunc(n));
const iso = (ms: number) => new Date(ms).toISOString();

interface SealRow {
  chain: string;
  instance: string;
  ps: string | number;
  pe: string | number;
  first_seq: string | number;
  last_seq: string | number;
  records: string | number;
  dropped: Array<string | number>;
  records_root: string;
  previous_digest: string;
  sa: string | number;
  key_id: string;
  digest: string;
  signature: string;
}

function storedSeal(r: SealRow): StoredSeal {
  const periodStartMs = Number(r.ps);
  const periodEndMs = Number(r.pe);
  return {
    chain: r.chain,
    instance: r.instance,
    period_start: iso(periodStartMs),
    period_end: iso(periodEndMs),
    first_seq: Number(r.first_seq),
    last_seq: Number(r.last_seq),
    records: Number(r.records),
    dropped: r.dropped.map(Number),
    records_root: r.records_root,
    previous_digest: r.previous_digest,
    sealed_at: iso(Number(r.sa)),
    key_id: r.key_id,
    digest: r.digest,
    signature: r.signature,
    periodStartMs,
    periodEndMs,
  };
}

/** Reads the columns' types, to render times in each table's own way. */
async function columnTypes(store: VerifyStore): Promise<Map<string, string>> {
  const rows = await store.queryRows<{ t: string; name: string; type: string }>(
    `SELECT table AS t, name, type FROM system.columns WHERE database = ${hexLiteral(store.database)} AND table IN ('transactions', 'audit_seals')`,
    {},
  );
  return new Map(rows.map((r) => [`${r.t}.${r.name}`, r.type]));
}

/**
 * The chain's latest period_start in {db}.audit_seals (epoch ms), or null when it has
 * none: the seal writer's catch-up after a restart. Written like verify's queries (no
 * query parameters, the column's own type), so it works on 18.16 as well.
 */
export async function latestSealMs(store: VerifyStore, chain: string): Promise<number | null> {
  const type = (await columnTypes(store)).get('audit_seals.period_start') ?? "DateTime64(3, 'UTC')";
  const [row] = await store.queryRows<{ n: string | number; ms: string | number }>(
    `SELECT count() AS n, toString(max(${millisExpr('period_start', type)})) AS ms FROM ${store.database}.audit_seals WHERE chain = ${hexLiteral(chain)}`,
    {},
  );
  return row === undefined || Number(row.n) === 0 ? null : Number(row.ms);
}

export interface VerifyQueries {
  seals(where: string, order: string): string;
  periods(range: VerifyRange): string;
  drill(chain: string, periodMs: number): string;
  counts(range: VerifyRange, sealedSinceMs: number): string;
}

/** The SQL of verify for this store's column types. */
export function verifyQueries(database: string, types: ReadonlyMap<string, string>): VerifyQueries {
  const type = (table: string, column: string) => {
    const t = types.get(`${table}.${column}`);
    if (t === undefined)
      throw new StoreConfigError(`verify: ${database}.${table} has no column ${column} (are migrations 4, 5 and 7 applied, or the DBA's DDL up to date?)`);
    return t;
  };
  const tx = `${database}.transactions`;
  // Each row is hashed in the canonical form it names (src/seal/canonical.ts): the form's
  // number and the columns version 2 adds must be there, else no v2 record can be recomputed.
  for (const c of ['canonical_form', 'jwt_findings', 'interaction_findings']) type('transactions', c);
  const hashSql = recordHashSql(
    (c) => millisExpr(c, type('transactions', c)),
    (c) => numberExpr(c, type('transactions', c)),
  );
  // The same hash as 32 bytes (no hex per row): compared with unhex(record_hash), which the root needs anyway.
  const digestSql = /^lower\(hex\((SHA256\(.*\))\)\)$/.exec(hashSql)?.[1];
  if (digestSql === undefined) throw new Error('recordHashSql is no longer lower(hex(SHA256(...)))');
  const sealMs = (c: string) => millisExpr(c, type('audit_seals', c));
  const received = millisExpr('received_at', type('transactions', 'received_at'));
  const periodWhere = (r: VerifyRange) =>
    (r.fromMs !== undefined ? ` AND seal_period >= ${int(r.fromMs)}` : '') + (r.toMs !== undefined ? ` AND seal_period < ${int(r.toMs)}` : '');
  return {
    seals: (where, order) =>
      `SELECT chain, instance, ${sealMs('period_start')} AS ps, ${sealMs('period_end')} AS pe, first_seq, last_seq, records, dropped,` +
      ` records_root, previous_digest, ${sealMs('sealed_at')} AS sa, key_id, digest, signature` +
      ` FROM ${database}.audit_seals WHERE ${where} ORDER BY ${order}`,
    // The root: the stored hashes' bytes in sequence order, concatenated and hashed (recordsRoot in src/seal).
    periods: (r) =>
      `SELECT seal_chain AS chain, toString(seal_period) AS period, count() AS n, min(seq) AS min_seq, max(seq) AS max_seq, uniqExact(seq) AS seqs,` +
      ` countIf(unhex(record_hash) != ${digestSql}) AS bad,` +
      ' lower(hex(SHA256(arrayStringConcat(arraySort((h, s) -> s, groupArray(unhex(record_hash)), groupArray(seq)))))) AS root' +
      ` FROM ${tx} FINAL WHERE seq > 0${periodWhere(r)} GROUP BY seal_chain, seal_period`,
    drill: (chain, periodMs) =>
      `SELECT seq, toString(event_id) AS id, record_hash, ${hashSql} AS recomputed FROM ${tx} FINAL` +
      ` WHERE seq > 0 AND seal_chain = ${hexLiteral(chain)} AND seal_period = ${int(periodMs)} ORDER BY seq, id`,
    // Final records with no sequence number: from before sealing began (unsealed), or forged after it (extra).
    counts: (r, since) => {
      const legacy = `version >= 2 AND seq = 0 AND t < ${int(since)}`;
      const forged = `version >= 2 AND seq = 0 AND t >= ${int(since)}`;
      const where = [r.fromMs !== undefined ? `t >= ${int(r.fromMs)}` : '', r.toMs !== undefined ? `t < ${int(r.toMs)}` : ''].filter(Boolean);
      return (
        `SELECT countIf(version = 1) AS in_flight, countIf(${legacy}) AS legacy, countIf(${forged}) AS forged,` +
        ` toString(minIf(t, ${forged})) AS forged_at, argMinIf(toString(event_id), t, ${forged}) AS forged_id` +
        ` FROM (SELECT version, seq, event_id, ${received} AS t FROM ${tx} FINAL${where.length ? ` WHERE ${where.join(' AND ')}` : ''})`
      );
    },
  };
}

/**
 * Verifies the trail over the periods starting in [fromMs, toMs) against the seals and
 * the public key (and other gateways' trusted keys, by key id): `intact`, or `broken`
 * with the first break (earliest period, then chain).
 */
export async function verifyTrail(
  store: VerifyStore,
  range: VerifyRange,
  publicKey: KeyObject,
  otherKeys: ReadonlyMap<string, KeyObject> = new Map(),
): Promise<VerifyResult> {
  const q = verifyQueries(store.database, await columnTypes(store));
  const inRange = [range.fromMs !== undefined ? `ps >= ${int(range.fromMs)}` : '', range.toMs !== undefined ? `ps < ${int(range.toMs)}` : ''].filter(Boolean);
  const [sealRows, beforeRows, afterRows, periodRows] = await Promise.all([
    store.queryRows<SealRow>(q.seals(inRange.length ? inRange.join(' AND ') : '1', 'chain, ps'), {}),
    range.fromMs !== undefined ? store.queryRows<SealRow>(q.seals(`ps < ${int(range.fromMs)}`, 'chain, ps DESC LIMIT 1 BY chain'), {}) : [],
    range.toMs !== undefined ? store.queryRows<SealRow>(q.seals(`ps >= ${int(range.toMs)}`, 'chain, ps LIMIT 1 BY chain'), {}) : [],
    store.queryRows<Record<string, string | number>>(q.periods(range), {}),
  ]);
  const seals = sealRows.map(storedSeal);
  const before = new Map(beforeRows.map((r) => [r.chain, storedSeal(r)]));
  const after = new Map(afterRows.map((r) => [r.chain, storedSeal(r)]));
  const rows: PeriodRows[] = periodRows.map((r) => ({
    chain: String(r.chain),
    periodMs: Number(r.period),
    count: Number(r.n),
    minSeq: Number(r.min_seq),
    maxSeq: Number(r.max_seq),
    distinctSeqs: Number(r.seqs),
    badHashes: Number(r.bad),
    root: String(r.root),
  }));
  const judged = judgePeriods({ publicKey, otherKeys, seals, before, after, rows });

  // Sealing began with the earliest seal there is (before the range, or in it).
  let sealedSince = Number.MAX_SAFE_INTEGER;
  for (const s of [...before.values(), ...seals]) sealedSince = Math.min(sealedSince, s.periodStartMs);
  const [counts] = await store.queryRows<Record<string, string | number>>(q.counts(range, sealedSince), {});

  let firstBreak = judged.firstBreak;
  if (judged.suspect !== null) {
    const drilled = await store.queryRows<{ seq: string | number; id: string; record_hash: string; recomputed: string }>(
      q.drill(judged.suspect.chain, judged.suspect.periodMs),
      {},
    );
    firstBreak = classifyRows(
      judged.suspect,
      drilled.map((d) => ({ seq: Number(d.seq), eventId: d.id, recordHash: d.record_hash, recomputed: d.recomputed })),
    );
  }
  const forged = Number(counts?.forged ?? 0);
  if (forged > 0) {
    const atMs = Number(counts.forged_at);
    if (firstBreak === null || atMs < firstBreak.periodMs) firstBreak = { chain: '', periodMs: atMs, kind: 'extra', eventId: String(counts.forged_id) };
  }
  return {
    status: firstBreak === null ? 'intact' : 'broken',
    chains: judged.chains.map((c) => ({
      chain: c.chain,
      instance: c.instance,
      // The drill-down and the forged-row count name only the first break; a chain is broken if it holds one.
      status: c.broken || (firstBreak !== null && firstBreak.chain === c.chain) ? 'broken' : 'intact',
      periodsChecked: c.periodsChecked,
      recordsChecked: c.recordsChecked,
      recordsUnsealed: c.recordsUnsealed,
    })),
    periodsChecked: judged.periodsChecked,
    recordsChecked: judged.recordsChecked,
    recordsUnsealed: judged.recordsUnsealed + Number(counts?.legacy ?? 0),
    recordsInFlight: Number(counts?.in_flight ?? 0),
    firstBreak,
    keyId: keyId(publicKey),
  };
}

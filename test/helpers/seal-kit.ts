import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { AuditStore } from '../../src/clickhouse';
import { queryDataDir } from './chdb-query';

/** Runs SQL against an audit store (`{db}`: its database): an in-process store, or a stopped gateway's DATA_DIR. */
export type Query = (sql: string) => Promise<Array<Record<string, unknown>>>;
export const storeQuery =
  (store: AuditStore): Query =>
  (sql) =>
    store.queryRows(sql.split('{db}').join(store.database), {});
export const dataDirQuery =
  (dataDir: string): Query =>
  async (sql) =>
    queryDataDir(dataDir, sql);
const chainLiteral = (chain: string) => {
  if (!/^[0-9a-f-]{36}$/.test(chain)) throw new Error(`not a chain id: ${chain}`);
  return `'${chain}'`;
};
import { GENESIS_DIGEST, SEAL_FILE, checkSeal, recordHashSql, recordsRoot, type Seal } from '../../src/seal';

/** The seals of the seal file under `dataDir`, in file order (every line must be one). */
export function fileSeals(dataDir: string): Seal[] {
  let text: string;
  try {
    text = readFileSync(join(dataDir, SEAL_FILE), 'utf8');
  } catch {
    return [];
  }
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Seal);
}

const isoOf = (chTime: string) => `${chTime.replace(' ', 'T')}Z`;

/** The chain's seals as stored in {db}.audit_seals, turned back into Seal objects (ISO times, numbers). */
export async function tableSeals(query: Query, chain: string): Promise<Seal[]> {
  const rows = await query(
    `SELECT chain, instance, toString(period_start) AS period_start, toString(period_end) AS period_end, first_seq, last_seq, records, dropped,
            records_root, previous_digest, toString(sealed_at) AS sealed_at, key_id, digest, signature
     FROM {db}.audit_seals FINAL WHERE chain = ${chainLiteral(chain)} ORDER BY period_start`,
  );
  return rows.map((r) => ({
    chain: String(r.chain),
    instance: String(r.instance),
    period_start: isoOf(String(r.period_start)),
    period_end: isoOf(String(r.period_end)),
    first_seq: Number(r.first_seq),
    last_seq: Number(r.last_seq),
    records: Number(r.records),
    dropped: (r.dropped as unknown[]).map(Number),
    records_root: String(r.records_root),
    previous_digest: String(r.previous_digest),
    sealed_at: isoOf(String(r.sealed_at)),
    key_id: String(r.key_id),
    digest: String(r.digest),
    signature: String(r.signature),
  }));
}

export interface SealedRow {
  event_id: string;
  trace_id: string;
  outcome: string;
  seal_chain: string;
  seal_period: number;
  seq: number;
  record_hash: string;
  /** recordHashSql() computed by ClickHouse over the stored row. */
  computed: string;
}

/** Final rows of `chain`, in seq order, each with the hash ClickHouse computes over it. */
export async function sealedRows(query: Query, chain: string): Promise<SealedRow[]> {
  const rows = await query(
    `SELECT toString(event_id) AS event_id, trace_id, outcome, seal_chain, seal_period, seq, record_hash, ${recordHashSql()} AS computed
     FROM {db}.transactions FINAL WHERE version = 2 AND seal_chain = ${chainLiteral(chain)} ORDER BY seq`,
  );
  return rows.map((r) => ({
    event_id: String(r.event_id),
    trace_id: String(r.trace_id),
    outcome: String(r.outcome),
    seal_chain: String(r.seal_chain),
    seal_period: Number(r.seal_period),
    seq: Number(r.seq),
    record_hash: String(r.record_hash),
    computed: String(r.computed),
  }));
}

/**
 * Checks the chain as a verifier would: every seal signed by `publicKey`, linked to its
 * predecessor (the first to GENESIS_DIGEST), sequence numbers contiguous from 1 across
 * seals, each row's hash right, each seal's records_root the root over its rows, and every
 * row of the chain covered by exactly one seal. Returns the seq numbers sealed as dropped.
 */
export function expectIntactChain(seals: readonly Seal[], rows: readonly SealedRow[], publicKey: KeyObject): { dropped: number[] } {
  let previous = GENESIS_DIGEST;
  let expectedSeq = 1;
  let lastEnd = 0;
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  expect(bySeq.size).toBe(rows.length); // no seq twice
  const dropped: number[] = [];
  let covered = 0;
  for (const seal of seals) {
    expect(checkSeal(seal, publicKey)).toBe('ok');
    expect(seal.previous_digest).toBe(previous);
    expect(seal.first_seq).toBe(expectedSeq);
    expect(Date.parse(seal.period_start)).toBeGreaterThanOrEqual(lastEnd);
    expect(Date.parse(seal.period_end)).toBeGreaterThan(Date.parse(seal.period_start));
    const hashes: string[] = [];
    for (let seq = seal.first_seq; seq <= seal.last_seq; seq++) {
      if (seal.dropped.includes(seq)) {
        expect(bySeq.has(seq)).toBe(false);
        dropped.push(seq);
        continue;
      }
      const row = bySeq.get(seq);
      expect(row).toBeDefined();
      expect(row!.computed).toBe(row!.record_hash);
      expect(row!.seal_period).toBe(Date.parse(seal.period_start));
      hashes.push(row!.record_hash);
      covered++;
    }
    expect(seal.records).toBe(hashes.length);
    expect(seal.records_root).toBe(recordsRoot(hashes));
    previous = seal.digest;
    expectedSeq = seal.last_seq + 1;
    lastEnd = Date.parse(seal.period_end);
  }
  expect(covered).toBe(rows.length);
  return { dropped };
}

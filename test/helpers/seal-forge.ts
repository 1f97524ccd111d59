import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { AUDIT_COLUMNS } from '../../src/clickhouse';
import type { AuditStore } from '../../src/clickhouse';
import {
  CANONICAL_FORM,
  canonicalColumns,
  EMPTY_ROOT,
  GENESIS_DIGEST,
  keyId,
  recordHash,
  recordsRoot,
  signSeal,
  type Seal,
  type SealBody,
} from '../../src/seal';

/**
 * Sealed audit rows and their seals, written straight into a store, the way the seal
 * writer would: for verify's tests (tampering behind the gateway's back) and its bench.
 * Times are ISO 8601 text in the records and seals, as the gateway writes them.
 */
export type SampleRecord = Record<string, string | number | string[]>;

export function ed25519(): { privateKey: KeyObject; publicKey: KeyObject; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, keyId: keyId(publicKey) };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A record's hash as the writer computes it: the canonical form takes times as epoch ms, the row holds ISO text. */
export function hashOf(r: SampleRecord): string {
  const values: SampleRecord = { ...r };
  for (const [name, kind] of canonicalColumns(Number(r.canonical_form)))
    if (kind === 'time' && typeof r[name] === 'string') values[name] = Date.parse(String(r[name]));
  return recordHash(values);
}

/** A final record with every column, at `atMs`, in the current canonical form. Sealing fields empty: sealPeriods fills them. */
export function sampleRecord(atMs: number, i: number, overrides: SampleRecord = {}): SampleRecord {
  const r: SampleRecord = {};
  for (const c of AUDIT_COLUMNS) r[c.name] = /^(U?Int|Float)/.test(c.type) ? 0 : c.type.startsWith('Array(') ? [] : '';
  return Object.assign(r, {
    event_id: randomUUID(),
    version: 2,
    trace_id: randomUUID(),
    received_at: iso(atMs),
    completed_at: iso(atMs + 7),
    duration_ms: 7.125 + (i % 10) / 1000,
    consumer_asid: '200000000359',
    consumer_ods: 'FA565',
    provider_asid: '918999198993',
    provider_ods: 'A20047',
    interaction_id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
    method: 'GET',
    target_host: '127.0.0.1:8081',
    endpoint: 'http://127.0.0.1:8081/A20047/STU3/1/gpconnect/fhir',
    status: 200,
    outcome: 'forwarded',
    request_bytes: 0,
    response_bytes: 1234 + i,
    upstream_ttfb_ms: 2.5,
    upstream_connect_ms: -1,
    client_ip: '127.0.0.1',
    jwt_requesting_organization: 'https://fhir.nhs.uk/Id/ods-organization-code|FA565',
    gateway_instance: 'test-instance',
    environment: 'test',
    canonical_form: CANONICAL_FORM,
    ...overrides,
  });
}

export interface SealedTrail {
  readonly chain: string;
  /** Records by period, sealing fields filled, in seq order. */
  readonly records: SampleRecord[];
  readonly seals: Seal[];
}

/**
 * Seals `perPeriod[i]` records in period i (periods of `periodMs` from `startMs`; 0 makes
 * an empty period), numbering them from `firstSeq`, each seal linked to the previous one.
 */
export function sealPeriods(opts: {
  chain?: string;
  startMs: number;
  periodMs?: number;
  perPeriod: readonly number[];
  privateKey: KeyObject;
  previousDigest?: string;
  firstSeq?: number;
  /** Sequence numbers to list as dropped (never written). */
  dropped?: readonly number[];
  /** Values of the record of sequence number `seq` (e.g. its canonical form, its findings), before it is hashed. */
  record?: (seq: number) => SampleRecord;
}): SealedTrail {
  const chain = opts.chain ?? `chain-${randomUUID().slice(0, 8)}`;
  const periodMs = opts.periodMs ?? 60_000;
  const kid = keyId(opts.privateKey);
  const dropped = new Set(opts.dropped ?? []);
  let seq = opts.firstSeq ?? 1;
  let previous = opts.previousDigest ?? GENESIS_DIGEST;
  const records: SampleRecord[] = [];
  const seals: Seal[] = [];
  opts.perPeriod.forEach((n, p) => {
    const start = opts.startMs + p * periodMs;
    const firstSeq = seq;
    const hashes: string[] = [];
    const droppedHere: number[] = [];
    for (let i = 0; i < n; i++) {
      while (dropped.has(seq)) droppedHere.push(seq++);
      const r = sampleRecord(start + 1 + i, i, { ...opts.record?.(seq), seal_chain: chain, seal_period: start, seq: seq++, gateway_instance: chain });
      r.record_hash = hashOf(r);
      hashes.push(String(r.record_hash));
      records.push(r);
    }
    const body: SealBody = {
      chain,
      instance: chain,
      period_start: iso(start),
      period_end: iso(start + periodMs),
      first_seq: firstSeq,
      last_seq: seq - 1,
      records: n,
      dropped: droppedHere,
      records_root: n === 0 ? EMPTY_ROOT : recordsRoot(hashes),
      previous_digest: previous,
      sealed_at: iso(start + periodMs + 5),
      key_id: kid,
    };
    const seal = signSeal(body, opts.privateKey);
    seals.push(seal);
    previous = seal.digest;
  });
  return { chain, records, seals };
}

/** Runs one SQL statement (DDL, INSERT with its data, ALTER): chDB through the store's client, or the server over HTTP. */
export type Exec = (sql: string) => Promise<unknown>;

/** The embedded store's own client (the test's only way into chDB while no gateway holds it). */
export function storeExec(store: AuditStore): Exec {
  const client = (store as unknown as { client: ClickHouseClient }).client;
  return (sql) => client.command({ query: sql, clickhouse_settings: { date_time_input_format: 'best_effort', mutations_sync: '2' } });
}

/** In-flight records (version 1, unsealed) are inserted alongside when `inFlight` is set, as the gateway writes them. */
export async function insertTrail(exec: Exec, database: string, trail: { records: readonly SampleRecord[]; seals: readonly Seal[] }): Promise<void> {
  if (trail.records.length > 0)
    await exec(`INSERT INTO ${database}.transactions FORMAT JSONEachRow\n${trail.records.map((r) => JSON.stringify(r)).join('\n')}`);
  if (trail.seals.length > 0) await insertSeals(exec, database, trail.seals);
}

export async function insertSeals(exec: Exec, database: string, seals: readonly Seal[]): Promise<void> {
  await exec(`INSERT INTO ${database}.audit_seals FORMAT JSONEachRow\n${seals.map((s) => JSON.stringify(s)).join('\n')}`);
}

/** A SQL string literal of any text (ClickHouse escapes: backslash and quote). */
export const literal = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

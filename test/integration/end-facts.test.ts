import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { encodeAuditRecord, recordIdentity, recordSealOf, type RecordContext } from '../../src/audit';
import { AuditStore } from '../../src/clickhouse';
import { createLogger } from '../../src/log';
import { CANONICAL_V2, Sealer, loadSigningKey, recordHash } from '../../src/seal';
import { Shipper, type ShipperEvents } from '../../src/shipper';
import { AuditSpool, SpoolQueue, SpoolWriter, decodeRecord, listSegments, scanSegment, segmentPath, type SpoolLink } from '../../src/spool';
import { Transaction } from '../../src/transaction';
import { chattr, diskFaultsUnavailable } from '../helpers/disk-faults';
import { sealedRows, storeQuery } from '../helpers/seal-kit';
import { eventually, tempDir, waitFor } from '../helpers/test-kit';

/**
 * Issue 13: a final record whose begin record is in the spool carries only what the end
 * adds (version 3 in the spool); the store (SpoolQueue + Shipper) merges it into its begin
 * record, so the rows in ClickHouse (embedded chDB) are exactly those of the complete
 * records written before, seals and verification included, across a restart of the store
 * side, and a final record without a durable begin stays complete.
 */
const root = tempDir('end-facts-');
let store: AuditStore;
const context: RecordContext = { instance: 'gw-end-facts', environment: 'local' };

beforeAll(async () => {
  store = new AuditStore({ url: undefined, dataDir: root, manageSchema: true, retentionDays: 3650, timeoutMs: 30_000 });
  await store.prepare();
}, 60_000);
afterAll(async () => {
  await store?.close();
});

const quiet: ShipperEvents = {
  ready: () => {},
  shipped: () => {},
  failed: () => {},
  deadLettered: () => {},
  skippedBadBytes: () => {},
  fileFault: () => {},
  fileRecovered: () => {},
};

function shipperOn(dir: string, link: SpoolLink, events: ShipperEvents = quiet): { shipper: Shipper; queue: SpoolQueue } {
  const queue = new SpoolQueue(dir, link);
  const shipper = new Shipper(
    { deadLetterDir: join(dir, '..', 'dead-letter'), batchMaxRecords: 500, batchMaxAgeMs: 20, minBackoffMs: 20, maxBackoffMs: 200 },
    queue,
    store,
    events,
  );
  return { shipper, queue };
}

/** Every column of the rows of `ids`, as ClickHouse returns them, in event id order. */
async function rowsOf(ids: readonly string[]): Promise<Array<Record<string, unknown>>> {
  return store.queryRows<Record<string, unknown>>(
    `SELECT * FROM ${store.table} FINAL WHERE toString(event_id) IN {ids:Array(String)} ORDER BY toString(event_id)`,
    { ids },
  );
}

async function truncate(): Promise<void> {
  await (store as unknown as { client: ClickHouseClient }).client.command({ query: `TRUNCATE TABLE ${store.table}` });
}

const spoolRecords = (dir: string) => listSegments(dir).flatMap((s) => scanSegment(dir, s).records.map((r) => r.payload));
const BEGIN_ONLY = ['trace_id', 'received_at', 'consumer_asid', 'provider_asid', 'interaction_id', 'method', 'endpoint', 'client_ip', 'jwt_practitioner_id'];
const BEGIN_ONLY_MORE = ['client_cert_subject', 'tls_cipher', 'jwt_findings', 'interaction_findings', 'gateway_instance', 'environment', 'canonical_form'];

/** Transactions of every kind of text the encoder handles, some with TLS and findings. */
function transactions(n: number): Transaction[] {
  const awkward = ['é ü 日本 😀', 'lone \ud800 surrogate', 'quote " back \\ slash', 'unit\x1fsep\ttab\nnl', '', 'ascii', '\u2028'];
  return Array.from({ length: n }, (_, i) => {
    const s = awkward[i % awkward.length];
    const tx = new Transaction(i % 2 ? 'POST' : 'GET', `10.0.0.${i}`);
    tx.traceId = randomUUID();
    tx.consumerAsid = '200000000359';
    tx.consumerOds = 'FA565';
    tx.providerAsid = '918999198993';
    tx.providerOds = 'A20047';
    tx.interactionId = `urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1:${s}`;
    tx.endpoint = `https://provider/${s}`;
    tx.targetHost = 'provider:443';
    tx.environment = ['test', 'live', ''][i % 3];
    tx.claims = {
      requestingOrganization: 'A1',
      practitionerId: `CANARY-PRACT-${s}`,
      practitionerRole: 'R',
      device: 'D',
      reasonForRequest: 'directcare',
      requestedScope: 's',
    };
    tx.tls =
      i % 2 ? { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', subject: `CN=${s}`, issuer: 'CN=ca', serial: '01', sha256: 'AB', hostNames: [] } : null;
    if (i % 4 === 1) tx.jwtFindings = ['JWT_EXPIRED'];
    if (i % 5 === 2) tx.interactionFindings = ['INTERACTION_PATH', 'INTERACTION_QUERY'];
    return tx;
  });
}

/** Ends `tx` as forwarded, refused or failed (kinds varied by index). */
function end(tx: Transaction, i: number): void {
  if (i % 3 === 2) tx.finish('upstream_error', 502, 'UPSTREAM_UNREACHABLE');
  else tx.finish('forwarded', 200);
  tx.failureReason = i % 3 === 2 ? 'ECONNREFUSED' : '';
  tx.requestBytes = i * 1000;
  tx.responseBytes = 2 ** 33 + i;
  tx.upstreamTtfbMs = i % 3 === 2 ? -1 : 12.3456 + i;
  tx.upstreamConnectMs = i % 2 ? 0 : 1.25;
}

test('forwarded, refused and failed transactions: the rows in chDB are those of the complete-record path, and every seal verifies', async () => {
  const txs = transactions(21);
  // New path: the gateway's sink (AuditSpool, sealed) writes begin records and end facts; a store queue merges them.
  const dir = join(tempDir('end-facts-new-'), 'spool');
  const sealer = Sealer.open({
    dataDir: join(dir, '..'),
    key: loadSigningKey(undefined, join(dir, '..')),
    periodMs: 60_000,
    instance: context.instance,
    log: createLogger('silent'),
  });
  const { spool } = await AuditSpool.open({ dir, segmentBytes: 8192, maxBytes: 1 << 30, deadlineMs: 5000, commitDelayMs: 0, context, sealer });
  const refused = new Set<number>();
  for (const [i, tx] of txs.entries()) {
    if (i % 7 === 3) {
      // A refusal: no begin record.
      refused.add(i);
      tx.finish('denied', 403, 'ASID_NOT_AUTHORISED');
    } else {
      await new Promise<void>((resolve, reject) => spool.begin(tx, (err) => (err ? reject(err) : resolve())));
      end(tx, i);
    }
    await new Promise<void>((resolve) => spool.finish(tx, resolve));
  }
  const finals = spoolRecords(dir).filter((p) => recordIdentity(p).version !== 1);
  expect(finals.map((p) => recordIdentity(p).version)).toEqual(txs.map((_, i) => (refused.has(i) ? 2 : 3)));
  // The end facts say nothing the begin record said.
  for (const p of finals.filter((f) => recordIdentity(f).version === 3)) {
    const keys = Object.keys(JSON.parse(p.toString('utf8')) as object);
    expect(keys.filter((k) => [...BEGIN_ONLY, ...BEGIN_ONLY_MORE].includes(k))).toEqual([]);
    expect(p.toString('utf8')).not.toContain('CANARY-PRACT');
  }
  const ids = txs.map((t) => t.eventId);
  const fresh = shipperOn(dir, spool.writer);
  fresh.shipper.start();
  await waitFor(async () => (await rowsOf(ids)).filter((r) => Number(r.version) === 2).length === txs.length, 30_000, 'the merged rows');
  await fresh.shipper.stop();
  await spool.close();
  await sealer.stop();
  expect(fresh.queue.unmatchedFinals).toBe(0);
  const merged = await rowsOf(ids);
  // Seal and verification on the merged rows: ClickHouse's hash and the JS canonical form agree with record_hash.
  const sealed = await sealedRows(storeQuery(store), sealer.chain);
  expect(sealed).toHaveLength(txs.length);
  for (const r of sealed) expect(r.computed).toBe(r.record_hash);
  const cols = CANONICAL_V2.map(([n, k]) => (k === 'time' ? `toUnixTimestamp64Milli(${n}) AS ${n}` : n)).join(', ');
  const canonical = await store.queryRows<Record<string, string | number | string[]>>(
    `SELECT ${cols}, canonical_form, record_hash FROM ${store.table} FINAL WHERE seal_chain = {chain:String}`,
    { chain: sealer.chain },
  );
  for (const r of canonical) expect(recordHash(r)).toBe(r.record_hash);

  // Old path: the same transactions written whole (begin, then the complete final record), with the same seals.
  await truncate();
  const seals = new Map(finals.map((p) => [recordIdentity(p).id, recordSealOf(p)!]));
  const oldDir = join(tempDir('end-facts-old-'), 'spool');
  mkdirSync(oldDir);
  const oldWriter = await SpoolWriter.open({ dir: oldDir, segmentBytes: 8192, maxBytes: 1 << 30 }, 1, 0, 0);
  for (const [i, tx] of txs.entries()) {
    if (!refused.has(i)) await oldWriter.append(encodeAuditRecord(tx, 1, context));
    await oldWriter.append(encodeAuditRecord(tx, 2, context, { ...seals.get(tx.eventId)!, hash: '' }));
  }
  const old = shipperOn(oldDir, oldWriter);
  old.shipper.start();
  await waitFor(async () => (await rowsOf(ids)).filter((r) => Number(r.version) === 2).length === txs.length, 30_000, 'the complete rows');
  await old.shipper.stop();
  await oldWriter.close();
  expect(merged).toEqual(await rowsOf(ids));
  expect(merged.filter((r) => r.record_hash === '')).toEqual([]);
}, 120_000);

test('the store restarts on its own: finals whose begins precede the checkpoint are merged, and their segment is kept until then', async () => {
  await truncate();
  const dir = join(tempDir('end-facts-restart-'), 'spool');
  const { spool } = await AuditSpool.open({ dir, segmentBytes: 4096, maxBytes: 1 << 30, deadlineMs: 5000, commitDelayMs: 0, context });
  const txs = transactions(6);
  for (const tx of txs) await new Promise<void>((resolve, reject) => spool.begin(tx, (err) => (err ? reject(err) : resolve())));
  // Closed transactions after them: the begins' segment ends up entirely before the checkpoint.
  const filler = transactions(12);
  for (const [i, tx] of filler.entries()) {
    await new Promise<void>((resolve, reject) => spool.begin(tx, (err) => (err ? reject(err) : resolve())));
    end(tx, i);
    await new Promise<void>((resolve) => spool.finish(tx, resolve));
  }
  const first = shipperOn(dir, spool.writer);
  first.shipper.start();
  const ids = txs.map((t) => t.eventId);
  await waitFor(async () => (await rowsOf([...ids, ...filler.map((t) => t.eventId)])).length === 18, 30_000, 'begins and fillers shipped');
  await eventually(() => listSegments(dir).length > 1, 5000, 'a rotation');
  await first.shipper.stop(); // the store process dies; the gateway (the spool) goes on
  expect(existsSync(segmentPath(dir, 1))).toBe(true);

  for (const [i, tx] of txs.entries()) {
    end(tx, i);
    await new Promise<void>((resolve) => spool.finish(tx, resolve));
  }
  const second = shipperOn(dir, spool.writer);
  second.shipper.start();
  try {
    await waitFor(async () => (await rowsOf(ids)).filter((r) => Number(r.version) === 2).length === txs.length, 30_000, 'the finals merged');
    const rows = await rowsOf(ids);
    const byId = new Map(rows.map((r) => [String(r.event_id), r]));
    for (const tx of txs)
      expect(byId.get(tx.eventId)).toMatchObject({
        trace_id: tx.traceId,
        consumer_asid: '200000000359',
        jwt_practitioner_id: tx.claims.practitionerId.replace('\ud800', '\ufffd'),
        outcome: tx.outcome,
        status: tx.status,
        response_bytes: tx.responseBytes,
        gateway_instance: context.instance,
        canonical_form: 2,
      });
    expect(second.queue.unmatchedFinals).toBe(0);
    // Their begins' segment goes once their finals are acknowledged.
    await eventually(() => !existsSync(segmentPath(dir, 1)), 5000, 'segment 1 deleted');
  } finally {
    await second.shipper.stop();
    await spool.close();
  }
}, 90_000);

test('a final whose begin is gone (a segment removed by hand) is stored with what it has, counted, never dropped', async () => {
  const dir = join(tempDir('end-facts-orphan-'), 'spool');
  const { spool } = await AuditSpool.open({ dir, segmentBytes: 2048, maxBytes: 1 << 30, deadlineMs: 5000, commitDelayMs: 0, context });
  const [tx, ...rest] = transactions(4);
  await new Promise<void>((resolve, reject) => spool.begin(tx, (err) => (err ? reject(err) : resolve())));
  for (const [i, t] of rest.entries()) {
    await new Promise<void>((resolve, reject) => spool.begin(t, (err) => (err ? reject(err) : resolve())));
    end(t, i);
    await new Promise<void>((resolve) => spool.finish(t, resolve));
  }
  await eventually(() => listSegments(dir).length > 1, 5000, 'a rotation');
  unlinkSync(segmentPath(dir, 1));
  end(tx, 0);
  await new Promise<void>((resolve) => spool.finish(tx, resolve));
  const told: number[] = [];
  const { shipper, queue } = shipperOn(dir, spool.writer, { ...quiet, unmatchedFinals: (n) => told.push(n) });
  shipper.start();
  try {
    await waitFor(async () => (await rowsOf([tx.eventId])).length === 1, 30_000, 'the orphan final stored');
    expect(await rowsOf([tx.eventId])).toMatchObject([{ version: 2, outcome: 'forwarded', status: 200, trace_id: '' }]);
    expect(queue.unmatchedFinals).toBe(1);
    expect(told).toEqual([1]);
  } finally {
    await shipper.stop();
    await spool.close();
  }
}, 60_000);

const faults = diskFaultsUnavailable();
(faults === null ? test : test.skip)(
  'AUDIT_FAILURE_MODE=open, spool failing: a request whose begin was not written (held or refused) gets a complete final record',
  async () => {
    const dir = join(tempDir('end-facts-open-'), 'spool');
    const { spool } = await AuditSpool.open({ dir, segmentBytes: 1 << 20, maxBytes: 1 << 30, deadlineMs: 5000, commitDelayMs: 0, context, failOpen: true });
    const [ok, held, refusedAtOnce] = transactions(3);
    const begin = (tx: Transaction) => new Promise<Error | undefined>((resolve) => spool.begin(tx, resolve));
    expect(await begin(ok)).toBeUndefined();
    end(ok, 0);
    await new Promise<void>((resolve) => spool.finish(ok, resolve));
    chattr('+i', segmentPath(dir, 1));
    try {
      expect(await begin(held)).toMatchObject({ code: 'GW_ERR_SPOOL_UNAVAILABLE', held: true });
      expect(await begin(refusedAtOnce)).toMatchObject({ code: 'GW_ERR_SPOOL_UNAVAILABLE', held: false });
      // Open mode: both forwarded all the same, and finished.
      end(held, 1);
      end(refusedAtOnce, 2);
      spool.finish(held);
      spool.finish(refusedAtOnce);
    } finally {
      chattr('-i', segmentPath(dir, 1));
    }
    await eventually(() => spool.writable && spool.writer.heldRecords === 0, 5000, 'the held records written');
    const finals = new Map(
      spoolRecords(dir)
        .filter((p) => recordIdentity(p).version !== 1)
        .map((p) => [recordIdentity(p).id, JSON.parse(p.toString('utf8')) as Record<string, unknown>]),
    );
    expect(finals.get(ok.eventId)).toMatchObject({ version: 3 });
    expect(finals.get(ok.eventId)).not.toHaveProperty('trace_id');
    for (const tx of [held, refusedAtOnce]) expect(finals.get(tx.eventId)).toMatchObject({ version: 2, trace_id: tx.traceId, outcome: tx.outcome });
    const { shipper, queue } = shipperOn(dir, spool.writer);
    shipper.start();
    try {
      const ids = [ok, held, refusedAtOnce].map((t) => t.eventId);
      await waitFor(async () => (await rowsOf(ids)).filter((r) => Number(r.version) === 2).length === 3, 30_000, 'three final rows');
      for (const r of await rowsOf(ids)) expect(r).toMatchObject({ consumer_asid: '200000000359', gateway_instance: context.instance });
      expect(queue.unmatchedFinals).toBe(0);
    } finally {
      await shipper.stop();
      await spool.close();
    }
  },
  60_000,
);

// Last in this file: it changes a column's type, so every insert fails for good.
test('a dead-lettered batch keeps the complete (merged) records', async () => {
  const dir = join(tempDir('end-facts-dead-'), 'spool');
  const { spool } = await AuditSpool.open({ dir, segmentBytes: 1 << 20, maxBytes: 1 << 30, deadlineMs: 5000, commitDelayMs: 0, context });
  const txs = transactions(3);
  for (const [i, tx] of txs.entries()) {
    await new Promise<void>((resolve, reject) => spool.begin(tx, (err) => (err ? reject(err) : resolve())));
    end(tx, i);
    await new Promise<void>((resolve) => spool.finish(tx, resolve));
  }
  // A column of the wrong type (as a DBA might leave it): no "GET" parses as a number.
  await truncate();
  await (store as unknown as { client: ClickHouseClient }).client.command({ query: `ALTER TABLE ${store.table} MODIFY COLUMN method UInt8` });
  const files: string[] = [];
  const { shipper } = shipperOn(dir, spool.writer, { ...quiet, deadLettered: (_n, file) => files.push(file) });
  shipper.start();
  try {
    await eventually(() => files.length > 0, 30_000, 'a dead letter');
  } finally {
    await shipper.stop();
    await spool.close();
  }
  const lines = files.flatMap((f) => {
    const data = readFileSync(f);
    const out: Record<string, unknown>[] = [];
    for (let offset = 0, r = decodeRecord(data, 0); r.kind === 'record'; offset = r.next, r = decodeRecord(data, offset))
      out.push(JSON.parse(r.payload.toString('utf8')) as Record<string, unknown>);
    return out;
  });
  const finals = lines.filter((l) => l.version !== 1);
  expect(finals.map((l) => l.version)).toEqual([2, 2, 2]);
  expect(finals.map((l) => [l.event_id, l.trace_id, l.consumer_asid])).toEqual(txs.map((t) => [t.eventId, t.traceId, '200000000359']));
}, 60_000);

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { AdminTokens } from '../../src/admin';
import { createInvestigationsApp } from '../../src/investigate';
import { AuditStore } from '../../src/clickhouse';
import { createLogger } from '../../src/log';
import { signSeal, type Seal } from '../../src/seal';
import { clickhouseServer, createOldServerSchema, mutationsDone, type ClickHouseServer } from '../helpers/clickhouse-server';
import {
  ed25519,
  hashOf,
  insertSeals,
  insertTrail,
  literal,
  sampleRecord,
  sealPeriods,
  storeExec,
  type Exec,
  type SampleRecord,
  type SealedTrail,
} from '../helpers/seal-forge';
import { send, tempDir, adminTokensFile } from '../helpers/test-kit';

/**
 * GET /audit/verify against real stores: the embedded engine (current ClickHouse) and
 * Debian's clickhouse-server 18.16 (the DBA's DDL, times as ISO text). Each test writes a
 * sealed trail the way the seal writer does, changes it behind the API's back with plain
 * SQL (ALTER UPDATE/DELETE, INSERT), and asks verify over a real socket.
 */
const T0 = Date.UTC(2026, 10, 21, 9, 0, 0);
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();
const key = ed25519();

interface Backend {
  store: AuditStore;
  /** Runs one statement and waits for its mutations. */
  exec: Exec;
  close(): Promise<void>;
}

async function embedded(): Promise<Backend> {
  const store = new AuditStore({ url: undefined, dataDir: tempDir('verify-'), manageSchema: true, retentionDays: 3650, timeoutMs: 10_000 });
  await store.prepare();
  return { store, exec: storeExec(store), close: () => store.close() };
}

async function oldServer(): Promise<Backend> {
  const ch: ClickHouseServer = await clickhouseServer(tempDir('verify-ch-'));
  await ch.start();
  await createOldServerSchema(ch);
  const store = new AuditStore({ url: ch.url, dataDir: tempDir('verify-'), manageSchema: false, retentionDays: 30, timeoutMs: 10_000 });
  return {
    store,
    exec: async (sql) => {
      await ch.sql(sql);
      await mutationsDone(ch);
    },
    close: async () => {
      await store.close();
      await ch.stop();
    },
  };
}

describe.each([
  ['embedded engine', embedded],
  ['clickhouse-server 18.16', oldServer],
])('verify on the %s', (_name, open) => {
  let b: Backend;
  let admin: Server;
  let trail: SealedTrail;

  beforeAll(async () => {
    b = await open();
    const app = createInvestigationsApp(b.store, createLogger('silent'), { tokens: null, auditPublicKey: key.publicKey });
    admin = createServer(app);
    await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  }, 60_000);
  afterAll(async () => {
    await new Promise((r) => admin?.close(r));
    await b?.close();
  }, 30_000);

  const db = () => b.store.database;
  beforeEach(async () => {
    await b.exec(`TRUNCATE TABLE ${db()}.transactions`);
    await b.exec(`TRUNCATE TABLE ${db()}.audit_seals`);
    // Four periods: 3 records, an empty period, 4 records, 2 records.
    trail = sealPeriods({ chain: 'gw-a', startMs: T0, perPeriod: [3, 0, 4, 2], privateKey: key.privateKey });
    await insertTrail(b.exec, db(), trail);
  });

  async function verify(query = ''): Promise<Record<string, unknown> & { first_break: Record<string, unknown> | null }> {
    const r = await send(`http://127.0.0.1:${(admin.address() as AddressInfo).port}/audit/verify${query}`);
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    return JSON.parse(r.body.toString());
  }
  const byId = (id: unknown) => `event_id = toUUID(${literal(String(id))})`;
  const sealAt = (p: number) => trail.seals[p];

  test('untouched: intact, every period and record counted, with the key id', async () => {
    expect(await verify()).toEqual({
      status: 'intact',
      periods_checked: 4,
      records_checked: 9,
      records_unsealed: 0,
      records_in_flight: 0,
      chains: [{ chain: 'gw-a', instance: 'gw-a', status: 'intact', periods_checked: 4, records_checked: 9, records_unsealed: 0 }],
      first_break: null,
      from: null,
      to: null,
      key_id: key.keyId,
    });
  });

  test('in-flight records, unsealed records after the last seal and dropped numbers are no break', async () => {
    const later = sealPeriods({
      chain: 'gw-a',
      startMs: T0 + 4 * MIN,
      perPeriod: [2, 1],
      privateKey: key.privateKey,
      previousDigest: trail.seals[3].digest,
      firstSeq: 10,
      dropped: [11],
    });
    // The second period's seal is not written yet: its record is unsealed.
    await insertTrail(b.exec, db(), { records: later.records, seals: later.seals.slice(0, 1) });
    const inFlight = sampleRecord(T0 + 6 * MIN, 0, { version: 1, outcome: 'in_flight' });
    await insertTrail(b.exec, db(), { records: [inFlight], seals: [] });
    const r = await verify();
    expect(r).toMatchObject({ status: 'intact', periods_checked: 5, records_checked: 11, records_unsealed: 1, records_in_flight: 1 });
  });

  test('a row altered (ALTER UPDATE of a non-key column): altered, naming the record', async () => {
    const victim = trail.records[5]; // period 2
    await b.exec(`ALTER TABLE ${db()}.transactions UPDATE status = 500 WHERE ${byId(victim.event_id)}`);
    const r = await verify();
    expect(r.status).toBe('broken');
    expect(r.first_break).toEqual({ chain: 'gw-a', period: iso(T0 + 2 * MIN), kind: 'altered', event_id: victim.event_id, seq: victim.seq });
  });

  test('a row altered with its hash recomputed: altered, no record can be named', async () => {
    const victim = trail.records[1]; // period 0
    const changed = { ...victim, outcome: 'refused', status: 403 };
    await b.exec(
      `ALTER TABLE ${db()}.transactions UPDATE outcome = 'refused', status = 403, record_hash = ${literal(hashOf(changed))} WHERE ${byId(victim.event_id)}`,
    );
    expect((await verify()).first_break).toEqual({ chain: 'gw-a', period: iso(T0), kind: 'altered' });
  });

  test('a row deleted: missing, naming its sequence number', async () => {
    const victim = trail.records[7]; // period 3
    await b.exec(`ALTER TABLE ${db()}.transactions DELETE WHERE ${byId(victim.event_id)}`);
    const r = await verify();
    expect(r.first_break).toEqual({ chain: 'gw-a', period: iso(T0 + 3 * MIN), kind: 'missing', seq: victim.seq });
    expect(r.records_checked).toBe(8);
  });

  test('a forged row inserted into a sealed period, with a valid hash: extra, naming it', async () => {
    const forged = sampleRecord(T0 + 2 * MIN + 30_000, 0, { seal_chain: 'gw-a', seal_period: T0 + 2 * MIN, seq: 100, gateway_instance: 'gw-a' });
    forged.record_hash = hashOf(forged);
    await insertTrail(b.exec, db(), { records: [forged], seals: [] });
    expect((await verify()).first_break).toEqual({ chain: 'gw-a', period: iso(T0 + 2 * MIN), kind: 'extra', event_id: forged.event_id, seq: 100 });
  });

  test('a forged row reusing a sealed number: extra', async () => {
    const forged = sampleRecord(T0 + 10, 0, { seal_chain: 'gw-a', seal_period: T0, seq: 2, gateway_instance: 'gw-a' });
    forged.record_hash = hashOf(forged);
    await insertTrail(b.exec, db(), { records: [forged], seals: [] });
    expect((await verify()).first_break).toMatchObject({ period: iso(T0), kind: 'extra', seq: 2 });
  });

  test('a forged row in a period no seal covers (between two seals): extra', async () => {
    const forged = sampleRecord(T0 + MIN + 5, 0, { seal_chain: 'gw-a', seal_period: T0 + MIN + 1, seq: 4, gateway_instance: 'gw-a' });
    forged.record_hash = hashOf(forged);
    await insertTrail(b.exec, db(), { records: [forged], seals: [] });
    expect((await verify()).first_break).toEqual({ chain: 'gw-a', period: iso(T0 + MIN + 1), kind: 'extra', event_id: forged.event_id, seq: 4 });
  });

  test('a forged final row with no sequence number, after sealing began: extra', async () => {
    const forged = sampleRecord(T0 + 2 * MIN + 1, 0);
    await insertTrail(b.exec, db(), { records: [forged], seals: [] });
    expect((await verify()).first_break).toMatchObject({ kind: 'extra', event_id: forged.event_id });
  });

  test('a seal deleted (the empty period between two others): digest_missing at its period', async () => {
    await b.exec(`ALTER TABLE ${db()}.audit_seals DELETE WHERE digest = ${literal(sealAt(1).digest)}`);
    expect((await verify()).first_break).toEqual({ chain: 'gw-a', period: iso(T0 + MIN), kind: 'digest_missing' });
  });

  test('a seal and its rows deleted together: digest_missing', async () => {
    await b.exec(`ALTER TABLE ${db()}.audit_seals DELETE WHERE digest = ${literal(sealAt(2).digest)}`);
    await b.exec(`ALTER TABLE ${db()}.transactions DELETE WHERE seal_period = ${T0 + 2 * MIN}`);
    expect((await verify()).first_break).toEqual({ chain: 'gw-a', period: iso(T0 + 2 * MIN), kind: 'digest_missing' });
  });

  test('the first seal deleted: digest_missing (the chain no longer starts at genesis)', async () => {
    await b.exec(`ALTER TABLE ${db()}.audit_seals DELETE WHERE digest = ${literal(sealAt(0).digest)}`);
    expect((await verify()).first_break).toEqual({ chain: 'gw-a', period: iso(T0), kind: 'digest_missing' });
  });

  test('a seal altered: digest_invalid', async () => {
    await b.exec(`ALTER TABLE ${db()}.audit_seals UPDATE records = 5 WHERE digest = ${literal(sealAt(2).digest)}`);
    expect((await verify()).first_break).toEqual({ chain: 'gw-a', period: iso(T0 + 2 * MIN), kind: 'digest_invalid', reason: 'digest_mismatch' });
  });

  test('a seal re-signed with another key (rows and seal rewritten to match): digest_invalid', async () => {
    const other = ed25519();
    const s = sealAt(3);
    const { digest: _d, signature: _s, ...body } = s;
    void _d;
    void _s;
    const forged: Seal = signSeal({ ...body, key_id: other.keyId }, other.privateKey);
    await b.exec(`ALTER TABLE ${db()}.audit_seals DELETE WHERE digest = ${literal(s.digest)}`);
    await insertSeals(b.exec, db(), [forged]);
    expect((await verify()).first_break).toEqual({
      chain: 'gw-a',
      period: iso(T0 + 3 * MIN),
      kind: 'digest_invalid',
      reason: 'other_key',
      key_id: other.keyId,
    });
  });

  test('a range: only its periods are judged, and the link into it is checked against the seal before it', async () => {
    await b.exec(`ALTER TABLE ${db()}.transactions UPDATE status = 500 WHERE ${byId(trail.records[0].event_id)}`);
    const later = await verify(`?from=${iso(T0 + MIN)}&to=${iso(T0 + 3 * MIN)}`);
    expect(later).toMatchObject({ status: 'intact', periods_checked: 2, records_checked: 4, from: iso(T0 + MIN), to: iso(T0 + 3 * MIN) });
    await b.exec(`ALTER TABLE ${db()}.audit_seals DELETE WHERE digest = ${literal(sealAt(1).digest)}`);
    expect((await verify(`?from=${iso(T0 + 2 * MIN)}`)).first_break).toMatchObject({ kind: 'digest_missing' });
    // A seal deleted just before the range's end shows in the link of the seal after it.
    expect((await verify(`?to=${iso(T0 + 2 * MIN)}`)).first_break).toMatchObject({ kind: 'altered' });
    expect((await verify(`?from=${iso(T0 + MIN)}&to=${iso(T0 + 2 * MIN)}`)).first_break).toMatchObject({ kind: 'digest_missing', period: iso(T0 + MIN) });
  });

  describe('canonical forms: rows hashed with version 1 (before the findings), then version 2', () => {
    // Periods 0-1 written by a gateway before issue 12 (form 1: the finding columns got their
    // defaults when migration 7 added them), periods 2-3 after (form 2, some with findings).
    let mixed: SealedTrail;
    const FINDINGS: Record<number, SampleRecord> = {
      5: { jwt_findings: ['JWT_EXPIRED', 'JWT_SUB_MISMATCH'], interaction_findings: [] },
      6: { jwt_findings: [], interaction_findings: ['INTERACTION_PATH'] },
      8: { jwt_findings: ['JWT_MISSING'], interaction_findings: ['INTERACTION_METHOD', 'INTERACTION_QUERY'] },
    };
    beforeEach(async () => {
      await b.exec(`TRUNCATE TABLE ${db()}.transactions`);
      await b.exec(`TRUNCATE TABLE ${db()}.audit_seals`);
      mixed = sealPeriods({
        chain: 'gw-m',
        startMs: T0,
        perPeriod: [2, 2, 3, 2],
        privateKey: key.privateKey,
        record: (seq) => (seq <= 4 ? { canonical_form: 1 } : { canonical_form: 2, ...FINDINGS[seq] }),
      });
      await insertTrail(b.exec, db(), mixed);
    });
    const bySeq = (seq: number) => mixed.records.find((r) => r.seq === seq)!;
    const altered = (seq: number, period: number) => ({
      chain: 'gw-m',
      period: iso(T0 + period * MIN),
      kind: 'altered',
      event_id: bySeq(seq).event_id,
      seq,
    });

    test('untouched: intact, each row recomputed in its own form', async () => {
      const rows = await b.store.queryRows<{ seq: number; f: number; j: string[] }>(
        `SELECT seq, canonical_form AS f, jwt_findings AS j FROM ${db()}.transactions ORDER BY seq`,
        {},
      );
      expect(rows.map((r) => Number(r.f))).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 2]);
      expect(rows[4].j).toEqual(['JWT_EXPIRED', 'JWT_SUB_MISMATCH']);
      expect(await verify()).toMatchObject({ status: 'intact', periods_checked: 4, records_checked: 9, first_break: null });
    });

    test('a finding removed from a version 2 record: altered, naming it', async () => {
      await b.exec(`ALTER TABLE ${db()}.transactions UPDATE jwt_findings = ['JWT_EXPIRED'] WHERE ${byId(bySeq(5).event_id)}`);
      expect((await verify()).first_break).toEqual(altered(5, 2));
    });

    test('a finding added to a version 2 record that had none: altered', async () => {
      await b.exec(`ALTER TABLE ${db()}.transactions UPDATE jwt_findings = ['JWT_EXPIRED'] WHERE ${byId(bySeq(7).event_id)}`);
      expect((await verify()).first_break).toEqual(altered(7, 2));
    });

    test('two findings joined into one (the same text joined with ","): altered', async () => {
      await b.exec(`ALTER TABLE ${db()}.transactions UPDATE jwt_findings = ['JWT_EXPIRED,JWT_SUB_MISMATCH'] WHERE ${byId(bySeq(5).event_id)}`);
      expect((await verify()).first_break).toEqual(altered(5, 2));
    });

    test("an interaction finding changed, the order of a record's findings changed: altered", async () => {
      await b.exec(
        `ALTER TABLE ${db()}.transactions UPDATE interaction_findings = ['INTERACTION_QUERY', 'INTERACTION_METHOD'] WHERE ${byId(bySeq(8).event_id)}`,
      );
      expect((await verify()).first_break).toEqual(altered(8, 3));
    });

    test('a finding written into a version 1 record (a form that predates findings): altered; claiming form 2 for it too', async () => {
      await b.exec(`ALTER TABLE ${db()}.transactions UPDATE interaction_findings = ['INTERACTION_PATH'] WHERE ${byId(bySeq(2).event_id)}`);
      expect((await verify()).first_break).toEqual(altered(2, 0));
      await b.exec(`ALTER TABLE ${db()}.transactions UPDATE canonical_form = 2 WHERE ${byId(bySeq(2).event_id)}`);
      expect((await verify()).first_break).toEqual(altered(2, 0));
    });

    test('canonical_form flipped: 2 to 1 on a record with no findings, 1 to 2, or to a form no one knows: altered', async () => {
      for (const [seq, period, form] of [
        [9, 3, 1],
        [3, 1, 2],
        [6, 2, 3],
        [1, 0, 0],
      ] as const) {
        await b.exec(`TRUNCATE TABLE ${db()}.transactions`);
        await insertTrail(b.exec, db(), { records: mixed.records, seals: [] });
        await b.exec(`ALTER TABLE ${db()}.transactions UPDATE canonical_form = ${form} WHERE ${byId(bySeq(seq).event_id)}`);
        expect({ form, break: (await verify()).first_break }).toEqual({ form, break: altered(seq, period) });
      }
    });
  });

  test("privacy: a record's values never reach verify's answer or its log line", async () => {
    const lines: string[] = [];
    const app = createInvestigationsApp(b.store, pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }), {
      tokens: null,
      auditPublicKey: key.publicKey,
    });
    const server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const victim = trail.records[4];
      await b.exec(`ALTER TABLE ${db()}.transactions UPDATE failure_reason = 'CANARY-patient-9434765919' WHERE ${byId(victim.event_id)}`);
      const r = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}/audit/verify`);
      expect(JSON.parse(r.body.toString()).first_break).toMatchObject({ kind: 'altered', event_id: victim.event_id });
      expect(lines.some((l) => l.includes('audit verify: the trail is broken'))).toBe(true);
      for (const text of [r.body.toString(), ...lines]) {
        expect(text).not.toContain('CANARY');
        expect(text).not.toContain(String(victim.trace_id));
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a bad range: 400 naming the parameter and listing what is valid', async () => {
    const port = (admin.address() as AddressInfo).port;
    for (const [q, filter] of [
      ['?from=yesterday', 'from'],
      ['?to=2026-13-01T00:00:00Z', 'to'],
      [`?from=${iso(T0)}&to=${iso(T0)}`, 'to'],
      ['?limit=5', 'limit'],
    ]) {
      const r = await send(`http://127.0.0.1:${port}/audit/verify${q}`);
      expect(r.status).toBe(400);
      const body = JSON.parse(r.body.toString());
      expect(body).toMatchObject({ error: 'invalid filter', filter });
      expect(Object.keys(body.valid)).toEqual(['from', 'to']);
      expect(r.body.toString()).not.toContain('yesterday');
    }
  });
});

test('GET /audit/public-key: JSON with key id and PEM; the PEM alone on request', async () => {
  const store = new AuditStore({
    url: 'http://default@127.0.0.1:9/spine_audit',
    dataDir: tempDir('pk-'),
    manageSchema: false,
    retentionDays: 30,
    timeoutMs: 1000,
  });
  const app = createInvestigationsApp(store, createLogger('silent'), { tokens: null, auditPublicKey: key.publicKey });
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/audit/public-key`;
    const json = await send(base);
    expect(json.status).toBe(200);
    const body = JSON.parse(json.body.toString());
    expect(body).toEqual({ key_id: key.keyId, algorithm: 'Ed25519', pem: key.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    for (const r of [await send(`${base}?format=pem`), await send(base, { headers: { Accept: 'application/x-pem-file' } })]) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^application\/x-pem-file/);
      expect(r.body.toString()).toBe(body.pem);
    }
    expect((await send(`${base}?format=der`)).status).toBe(400);
    // The store is down (port 9): verify answers 503, not a finding.
    const down = await send(base.replace('public-key', 'verify'));
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body.toString()).error).toBe('audit store unavailable');
  } finally {
    await new Promise((r) => server.close(r));
    await store.close();
  }
});

test('with ADMIN_TOKENS_FILE, verify and the public key need an auditor token: 401 without, 403 for the metrics role', async () => {
  const file = adminTokensFile([
    { name: 'scraper', role: 'metrics', token: 'metrics-token-1' },
    { name: 'alice', role: 'auditor', token: 'auditor-token-1' },
  ]);
  const store = new AuditStore({
    url: 'http://default@127.0.0.1:9/spine_audit',
    dataDir: tempDir('pk-'),
    manageSchema: false,
    retentionDays: 30,
    timeoutMs: 1000,
  });
  const app = createInvestigationsApp(store, createLogger('silent'), {
    tokens: AdminTokens.load(file),
    auditPublicKey: key.publicKey,
  });
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/audit`;
    for (const path of ['/verify', '/public-key']) {
      expect((await send(base + path)).status).toBe(401);
      expect((await send(base + path, { headers: { Authorization: 'Bearer metrics-token-1' } })).status).toBe(403);
      const ok = await send(base + path, { headers: { Authorization: 'Bearer auditor-token-1' } });
      expect(ok.status).toBe(path === '/verify' ? 503 : 200); // the store is down (port 9); the key is served
      expect(ok.headers['cache-control']).toBe('no-store');
    }
  } finally {
    await new Promise((r) => server.close(r));
    await store.close();
  }
});

import { readFileSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { END_FACTS, encodeAuditRecord, mergeEndFacts, recordIdentity, recordSealOf } from '../../src/audit';
import { createLogger } from '../../src/log';
import { CANONICAL_FORM, CANONICAL_V2, SEAL_FILE, Sealer, loadSigningKey, recordHash } from '../../src/seal';
import { AuditSpool, recoverSpool } from '../../src/spool';
import { Transaction } from '../../src/transaction';
import {
  FIXTURES,
  directoryYaml,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  waitFor,
  type RunningGateway,
  type TestProvider,
  startProvider,
  tempDir,
} from '../helpers/test-kit';
import { expectIntactChain, fileSeals, sealedRows, storeQuery, tableSeals } from '../helpers/seal-kit';

/**
 * The seal writer (README: Tamper evidence) on a real in-process gateway with the embedded
 * engine: records get a hash ClickHouse agrees with and a gapless sequence number, and
 * every period (empty ones too) is sealed, signed, chained, and kept in the file, the
 * table and one log line each, with nothing of any record in them.
 */
let provider: TestProvider;
let gw: RunningGateway;
const PERIOD_MS = 1000;

beforeAll(async () => {
  provider = await startProvider(okHandler('{"resourceType":"Bundle","canary":"CANARY-BODY-7f3a"}'));
  gw = await startGateway(
    directoryYaml({ metadata: provider.root }),
    {
      AUDIT_ENABLED: 'true',
      AUDIT_BATCH_MAX_AGE_MS: '50',
      AUDIT_SEAL_PERIOD_MS: String(PERIOD_MS),
      LOG_LEVEL: 'info',
    },
    { store: 'inline' },
  );
});
afterAll(async () => {
  await gw?.stop();
  await provider.close();
});

const audit = () => gw.gateway.audit!;
const dataDir = () => join(gw.dir, 'data');

/** A JWT whose claims carry canaries and JSON's awkward characters (the gateway keeps printable ASCII only). */
function canaryJwt(): string {
  const payload = JSON.parse(readFileSync(join(FIXTURES, 'jwt', 'jwt-payload-example.json'), 'utf8')) as Record<string, unknown>;
  (payload.requesting_practitioner as { identifier: Array<{ value: string }> }).identifier[0].value = 'CANARY-PRACT-"q"\\b';
  payload.reason_for_request = 'directcare';
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}

/** Finding lists as the checks give them (src/check's codes), varied per record: none, one, several. */
const FINDINGS: ReadonlyArray<readonly [jwt: readonly string[], interaction: readonly string[]]> = [
  [[], []],
  [['JWT_EXPIRED'], []],
  [[], ['INTERACTION_PATH']],
  [
    ['JWT_MISSING', 'JWT_SCOPE_NOT_FOR_INTERACTION', 'JWT_SUB_MISMATCH'],
    ['INTERACTION_METHOD', 'INTERACTION_QUERY'],
  ],
];

test("the encoder's record_hash equals recordHashSql() computed by ClickHouse over the stored row, for awkward values, findings and environments", async () => {
  const store = audit().store!;
  await waitFor(() => audit().stats.clickhouseUp(), 15_000, 'the store ready');
  const chain = randomUUID();
  const awkward = ['é ü 日本 😀', 'lone \ud800 surrogate', 'trail \udc00', 'quote " back \\ slash', 'unit\x1fsep\x00nul\ttab\nnl', '', '\u2028\u2029', 'ascii'];
  const lines: string[] = [];
  const expected: Array<{ id: string; hash: string }> = [];
  awkward.forEach((s, i) => {
    const tx = new Transaction(i % 2 ? 'POST' : 'GET', i % 3 ? '::ffff:127.0.0.1' : `10.0.0.${i}`);
    tx.traceId = randomUUID();
    tx.consumerAsid = '200000000359';
    tx.consumerOds = 'FA565';
    tx.providerAsid = '918999198993';
    tx.providerOds = 'A20047';
    tx.interactionId = `urn:x:${s}`;
    tx.endpoint = `https://host/${s}`;
    tx.targetHost = `host:${i}`;
    tx.claims = {
      requestingOrganization: s,
      practitionerId: `p${s}`,
      practitionerRole: s.slice(0, 3),
      device: `${s} 5.3`,
      reasonForRequest: 'directcare',
      requestedScope: s,
    };
    tx.tls =
      i % 2 === 0
        ? {
            protocol: 'TLSv1.2',
            cipher: 'ECDHE-RSA-AES256-GCM-SHA384',
            subject: `CN=${s},O="x"`,
            issuer: `CN=CA ${s}`,
            serial: '0A1B',
            sha256: 'AB:CD',
            hostNames: [],
          }
        : null;
    tx.requestBytes = [0, 1, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER][i % 4];
    tx.responseBytes = [10 ** 12, 0, 5, 2 ** 40][i % 4];
    tx.upstreamTtfbMs = i % 2 ? -1 : 12.3456789;
    tx.upstreamConnectMs = i % 3 ? -1 : 0.0004;
    [tx.jwtFindings, tx.interactionFindings] = FINDINGS[i % FINDINGS.length];
    tx.environment = ['test', 'live', ''][i % 3]; // '' : the consumer is unknown, the context's environment stands
    tx.finish(i % 2 ? 'denied' : 'forwarded', i % 2 ? 403 : 200, i % 2 ? 'ASID_NOT_AUTHORISED' : '');
    tx.durationMs = [0.1 + 0.2, 1234.56789, 0, 0.0005, 99999.9999][i % 5];
    tx.completedAt = tx.receivedAt + tx.durationMs;
    const seal = { chain, period: 1_764_000_000_000 + i * 1000, seq: i + 1, hash: '' };
    lines.push(encodeAuditRecord(tx, 2, { instance: `gw ${s}`, environment: 'local' }, seal));
    expected.push({ id: tx.eventId, hash: seal.hash });
  });
  // ASCII records in a run, each differing from the one before in one field only (the encoder reuses what repeats).
  const peer = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', subject: 'CN=a', issuer: 'CN=ca', serial: '01', sha256: 'AA', hostNames: [] };
  const changes: Array<(tx: Transaction) => void> = [
    () => {},
    () => {},
    (tx) => (tx.claims = { ...tx.claims, practitionerRole: 'R2' }),
    (tx) => (tx.endpoint = 'https://host/other'),
    (tx) => (tx.consumerOds = 'FA566'),
    (tx) => (tx.tls = { ...peer, subject: 'CN=b' }),
    (tx) => (tx.tls = null),
    (tx) => (tx.providerAsid = '918999198994'),
    (tx) => (tx.environment = 'test'),
    (tx) => (tx.environment = 'test'),
    (tx) => (tx.environment = 'live'),
    (tx) => (tx.jwtFindings = ['JWT_EXPIRED']),
    (tx) => (tx.jwtFindings = ['JWT_EXPIRED']),
    (tx) => (tx.interactionFindings = ['INTERACTION_PATH', 'INTERACTION_QUERY']),
    (tx) => ([tx.jwtFindings, tx.interactionFindings] = [['JWT_AUD_MISSING', 'JWT_IAT_INVALID'], ['INTERACTION_METHOD']]),
    () => {},
  ];
  changes.forEach((change, i) => {
    const tx = new Transaction('GET', '127.0.0.1');
    tx.traceId = randomUUID();
    tx.consumerAsid = '200000000359';
    tx.consumerOds = 'FA565';
    tx.providerAsid = '918999198993';
    tx.providerOds = 'A20047';
    tx.interactionId = 'urn:x:y';
    tx.endpoint = 'https://host/base';
    tx.targetHost = 'host:443';
    tx.claims = {
      requestingOrganization: 'A1',
      practitionerId: 'P1',
      practitionerRole: 'R1',
      device: 'D',
      reasonForRequest: 'directcare',
      requestedScope: 's',
    };
    tx.tls = peer;
    change(tx);
    tx.finish('forwarded', 200);
    const seal = { chain, period: 1_764_000_100_000, seq: awkward.length + i + 1, hash: '' };
    lines.push(encodeAuditRecord(tx, 2, i === 7 ? { instance: 'gw-2', environment: 'local' } : { instance: 'gw', environment: 'local' }, seal));
    expected.push({ id: tx.eventId, hash: seal.hash });
  });
  await store.insertLines(lines.join('\n'));
  const rows = await sealedRows(storeQuery(store), chain);
  expect(rows.map((r) => r.event_id)).toEqual(expected.map((e) => e.id));
  for (const [i, row] of rows.entries()) {
    expect(row.record_hash).toBe(expected[i].hash);
    expect(row.computed).toBe(row.record_hash);
  }
  // And the canonical form in JS over the row as ClickHouse returns it agrees too (the verifier's other path).
  const cols = CANONICAL_V2.map(([n, k]) => (k === 'time' ? `toUnixTimestamp64Milli(${n}) AS ${n}` : n)).join(', ');
  const full = await store.queryRows<Record<string, string | number | string[]>>(
    `SELECT ${cols}, canonical_form, record_hash FROM ${store.table} FINAL WHERE seal_chain = {chain:String} ORDER BY seq`,
    { chain },
  );
  for (const r of full) {
    expect(r.canonical_form).toBe(CANONICAL_FORM);
    expect(recordHash(r)).toBe(r.record_hash);
  }
  // The rows hold the findings and environments written, and the hash covers them.
  expect(full.map((r) => r.environment)).toEqual([
    ...awkward.map((_, i) => ['test', 'live', 'local'][i % 3]),
    ...changes.map((_, i) => (i === 8 || i === 9 ? 'test' : i === 10 ? 'live' : 'local')),
  ]);
  expect(full.some((r) => (r.jwt_findings as string[]).length === 3 && (r.interaction_findings as string[]).length === 2)).toBe(true);
  expect(new Set(full.map((r) => r.environment))).toEqual(new Set(['test', 'live', 'local']));
  // The lone surrogate was written as U+FFFD, so ClickHouse and JavaScript read the same text.
  expect(full.some((r) => String(r.jwt_requesting_organization) === 'lone \ufffd surrogate')).toBe(true);
});

test('interrupted records (spool recovery) are hashed in form 2 as ClickHouse recomputes them: findings, environments, and begin records of older layouts', async () => {
  const store = audit().store!;
  await waitFor(() => audit().stats.clickhouseUp(), 15_000, 'the store ready');
  const dir = tempDir('seal-interrupted-');
  const spoolDir = join(dir, 'spool');
  const context = { instance: 'gw-crashed', environment: 'local' };
  const options = { dir: spoolDir, segmentBytes: 1 << 20, maxBytes: 1 << 30, deadlineMs: 5000, commitDelayMs: 0, context };
  // A gateway that stopped with transactions in flight: their begin records, and no final ones.
  const first = await AuditSpool.open(options);
  const begins: Array<{ id: string; jwt: string[]; interaction: string[]; environment: string }> = [];
  for (const [i, [jwt, interaction]] of FINDINGS.entries()) {
    const tx = new Transaction('GET', '127.0.0.1');
    tx.traceId = randomUUID();
    tx.consumerAsid = '200000000359';
    tx.interactionId = 'urn:x:y';
    tx.claims = { ...tx.claims, practitionerId: i === 3 ? 'Dr é 日本' : 'P1' }; // non-ASCII in one
    tx.jwtFindings = jwt;
    tx.interactionFindings = interaction;
    tx.environment = i % 2 ? 'test' : '';
    let line = encodeAuditRecord(tx, 1, context);
    if (i === 1) line = line.replace('"canonical_form":2', '"canonical_form":1'); // written by a gateway of form 1
    if (i === 2) {
      // Written before issue 12: no finding columns, no canonical_form.
      const r = JSON.parse(line) as Record<string, unknown>;
      for (const k of ['jwt_findings', 'interaction_findings', 'canonical_form']) delete r[k];
      line = JSON.stringify(r);
    }
    await first.spool.writer.append(line);
    begins.push({ id: tx.eventId, jwt: i === 2 ? [] : [...jwt], interaction: i === 2 ? [] : [...interaction], environment: i % 2 ? 'test' : 'local' });
  }
  await first.spool.close();
  // The next start: recovery writes their final records, sealed.
  const sealer = Sealer.open({ dataDir: dir, key: loadSigningKey(undefined, dir), periodMs: 60_000, instance: 'gw-crashed', log: createLogger('silent') });
  const second = await AuditSpool.open({ ...options, sealer });
  expect(second.recovery?.interrupted).toBe(begins.length);
  await second.spool.close();
  await sealer.stop();
  // Each interrupted record carries only what differs from its begin record (version 3): the store merges the two.
  const finals: Buffer[] = [];
  const spooledBegins = new Map<string, Buffer>();
  recoverSpool(spoolDir, (_segment, payload) => {
    const { id, version } = recordIdentity(payload);
    if (version === 1) spooledBegins.set(id, Buffer.from(payload));
    else finals.push(Buffer.from(payload));
  });
  expect(finals).toHaveLength(begins.length);
  expect(finals.map((l) => recordIdentity(l).version)).toEqual(begins.map(() => END_FACTS));
  expect(finals.filter((l) => 'trace_id' in JSON.parse(l.toString()) || 'consumer_asid' in JSON.parse(l.toString()))).toEqual([]);
  // The seal fields stay last, where a later recovery reads them.
  expect(finals.filter((l) => recordSealOf(l)?.chain !== sealer.chain).map((l) => l.toString().slice(-300))).toEqual([]);
  await store.insertLines(finals.map((l) => mergeEndFacts(spooledBegins.get(recordIdentity(l).id)!, l).toString()).join('\n'));

  const rows = await sealedRows(storeQuery(store), sealer.chain);
  expect(rows.map((r) => r.outcome)).toEqual(begins.map(() => 'interrupted'));
  for (const r of rows) expect(r.computed).toBe(r.record_hash);
  const cols = CANONICAL_V2.map(([n, k]) => (k === 'time' ? `toUnixTimestamp64Milli(${n}) AS ${n}` : n)).join(', ');
  const full = await store.queryRows<Record<string, string | number | string[]>>(
    `SELECT ${cols}, canonical_form, record_hash FROM ${store.table} FINAL WHERE seal_chain = {chain:String} ORDER BY seq`,
    { chain: sealer.chain },
  );
  for (const r of full) {
    expect(r.canonical_form).toBe(CANONICAL_FORM);
    expect(recordHash(r)).toBe(r.record_hash);
  }
  const byId = new Map(full.map((r) => [String(r.event_id), r]));
  for (const b of begins)
    expect({ id: b.id, ...byId.get(b.id) }).toMatchObject({ id: b.id, jwt_findings: b.jwt, interaction_findings: b.interaction, environment: b.environment });
});

test('through the gateway: seq 1..n with no gap, right hashes, every period sealed (empty ones too), signed and chained in file, table and log; no canary', async () => {
  const a = audit();
  const chain = a.sealer.chain;
  expect(chain).toMatch(/^[0-9a-f-]{36}$/);
  const jwt = canaryJwt();
  const traces: string[] = [];
  for (let i = 0; i < 12; i++) {
    const traceId = randomUUID();
    traces.push(traceId);
    const ok = i % 4 !== 3;
    const r = await send(gw.url(`${provider.root}/Patient/9990001112?identifier=CANARY-QUERY-5c1d`), {
      headers: sspHeaders({ 'Ssp-TraceID': traceId, Authorization: `Bearer ${jwt}`, ...(ok ? {} : { 'Ssp-From': '999999999999' }) }),
    });
    expect(r.status).toBe(ok ? 200 : 403);
    if (i === 5) await new Promise((res) => setTimeout(res, 2.5 * PERIOD_MS)); // idle: at least one empty period
  }
  // Every record sealed and in the table, with its seal.
  let seals: Awaited<ReturnType<typeof tableSeals>> = [];
  let rows: Awaited<ReturnType<typeof sealedRows>> = [];
  await waitFor(
    async () => {
      rows = await sealedRows(storeQuery(a.store!), chain);
      seals = await tableSeals(storeQuery(a.store!), chain);
      const lastSealed = seals.length > 0 ? seals[seals.length - 1].last_seq : 0;
      return rows.length >= 12 && lastSealed >= rows[rows.length - 1].seq && seals.length >= 4;
    },
    20_000,
    'all records sealed and stored',
    200,
  );
  expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
  for (const t of traces) expect(rows.filter((r) => r.trace_id === t)).toHaveLength(1);
  const { dropped } = expectIntactChain(seals, rows, a.signing.publicKey);
  expect(dropped).toEqual([]);
  expect(seals.some((s) => s.records === 0 && s.last_seq === s.first_seq - 1)).toBe(true); // an empty period, sealed
  for (const s of seals) expect(Date.parse(s.period_end) - Date.parse(s.period_start)).toBeLessThanOrEqual(PERIOD_MS);

  // The file holds the same seals, byte for byte the same digests, in order; the table has them all.
  const inFile = fileSeals(dataDir());
  expect(inFile.slice(0, seals.length).map((s) => s.digest)).toEqual(seals.map((s) => s.digest));
  expect(inFile.slice(0, seals.length)).toEqual(seals);

  // One log line per seal, with the chain's head and nothing from any record.
  const sealLinesNow = () =>
    readFileSync(gw.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"audit period sealed"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => sealLinesNow().length >= seals.length, 5000, 'the seal log lines');
  const sealLines = sealLinesNow();
  for (const s of seals) {
    const lines = sealLines.filter((l) => l.digest === s.digest);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      chain,
      period_start: s.period_start,
      first_seq: s.first_seq,
      last_seq: s.last_seq,
      records: s.records,
      key_id: a.signing.keyId,
    });
  }

  // No canary anywhere in the seals' three copies.
  const sealFileText = readFileSync(join(dataDir(), SEAL_FILE), 'utf8');
  const tableText = JSON.stringify(seals);
  for (const canary of ['CANARY-PRACT', 'CANARY-BODY', 'CANARY-QUERY', '9990001112', jwt.split('.')[1]]) {
    expect(sealFileText).not.toContain(canary);
    expect(tableText).not.toContain(canary);
    expect(sealLines.map((l) => JSON.stringify(l)).join('\n')).not.toContain(canary);
  }
  for (const t of traces) expect(sealFileText).not.toContain(t);
  // Nor in any line of the gateway's log (the record's facts are in the table, never in a log line).
  const wholeLog = readFileSync(gw.logFile, 'utf8');
  for (const canary of ['CANARY-PRACT', 'CANARY-BODY', 'CANARY-QUERY', '9990001112', jwt.split('.')[1]]) expect(wholeLog).not.toContain(canary);
});

test('the signing key is generated once under DATA_DIR with mode 0600, and is what the seals name', () => {
  const st = statSync(join(dataDir(), 'audit-signing-key.pem'));
  expect(st.mode & 0o777).toBe(0o600);
  const seals = fileSeals(dataDir());
  expect(seals.length).toBeGreaterThan(0);
  for (const s of seals) expect(s.key_id).toBe(audit().signing.keyId);
  expect(audit().signing.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
});

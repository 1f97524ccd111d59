import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { keyId, type Seal } from '../../src/seal';
import { runGateway, tracedRequests, type ChildGateway } from '../helpers/child-gateway';
import { chattr, diskFaultsUnavailable } from '../helpers/disk-faults';
import { dataDirQuery, expectIntactChain, fileSeals, sealedRows, tableSeals } from '../helpers/seal-kit';
import { directoryYaml, eventually, freePort, sspHeaders, startProvider, tempDir, waitFor, type TestProvider } from '../helpers/test-kit';

/**
 * The seal writer across stops, crashes and faults, on child gateways (dist/): the chain
 * and the sequence continue after a restart and after SIGKILL under traffic (every
 * sequence number stored and sealed exactly once, or sealed as dropped), spool segments
 * are kept until their records are sealed, the key comes from AUDIT_SIGNING_KEY_FILE or is
 * generated once, and a seal file that cannot be written never ends the process.
 */
let provider: TestProvider;
const reachedProvider = new Set<string>();
const PERIOD = '1000';

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    reachedProvider.add(String(req.headers['ssp-traceid']));
    setTimeout(() => res.end('{}'), Math.random() < 0.2 ? 150 : 2); // some are caught in flight by a kill
  });
});
afterAll(() => provider.close());

const yaml = () => directoryYaml({ metadata: provider.root });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const requests = (gw: ChildGateway, n: number): Promise<string[]> => tracedRequests(gw, `${provider.root}/metadata`, n);

async function stop(gw: ChildGateway): Promise<void> {
  gw.kill('SIGTERM');
  const { code } = await gw.exited;
  expect(code).toBe(0);
}

/** The `audit period sealed` log lines of these runs' stdout. */
function sealLogLines(...runs: ChildGateway[]): Array<Record<string, unknown>> {
  return runs
    .flatMap((gw) => gw.stdout().split('\n'))
    .filter((l) => l.includes('"audit period sealed"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const publicKeyOf = (dataDir: string) => createPublicKey(readFileSync(join(dataDir, 'audit-signing-key.pem')));

/** The stopped gateway's chain, as a verifier would check it: the file and the table agree, the chain is intact. */
async function checkStoppedChain(dataDir: string) {
  const inFile = fileSeals(dataDir);
  expect(inFile.length).toBeGreaterThan(0);
  const chain = inFile[0].chain;
  expect(inFile.every((s) => s.chain === chain)).toBe(true);
  const query = dataDirQuery(dataDir);
  const seals = await tableSeals(query, chain);
  const rows = await sealedRows(query, chain);
  expect(seals).toEqual(inFile); // every seal of the file reached the table (caught up after restarts)
  const { dropped } = expectIntactChain(seals, rows, publicKeyOf(dataDir));
  return { chain, seals, rows, dropped };
}

test('a restart continues the chain and the sequence, with the same generated key (mode 0600)', async () => {
  const dataDir = tempDir('gw-seal-restart-');
  const env = { DATA_DIR: dataDir, AUDIT_SEAL_PERIOD_MS: PERIOD, AUDIT_BATCH_MAX_AGE_MS: '100', LOG_LEVEL: 'info' };
  const first = await runGateway(yaml(), env);
  const ids = await requests(first, 5);
  await stop(first);
  const keyPem = readFileSync(join(dataDir, 'audit-signing-key.pem'), 'utf8');
  expect(statSync(join(dataDir, 'audit-signing-key.pem')).mode & 0o777).toBe(0o600);
  const afterFirst = fileSeals(dataDir);
  expect(afterFirst[afterFirst.length - 1].last_seq).toBe(5); // the stop sealed the open period

  const second = await runGateway(yaml(), env);
  ids.push(...(await requests(second, 5)));
  await sleep(1500);
  await stop(second);
  expect(readFileSync(join(dataDir, 'audit-signing-key.pem'), 'utf8')).toBe(keyPem);

  const { seals, rows } = await checkStoppedChain(dataDir);
  expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  expect(rows.map((r) => r.trace_id)).toEqual(ids);
  expect(seals.slice(0, afterFirst.length)).toEqual(afterFirst); // nothing of the first run rewritten
  // One log line per seal, over both runs.
  const lines = sealLogLines(first, second);
  for (const s of seals) expect(lines.filter((l) => l.digest === s.digest)).toHaveLength(1);
  expect(lines).toHaveLength(seals.length);
}, 90_000);

/** Requests in `concurrency` loops until stopped: the trace IDs answered, with their status. */
function load(gw: ChildGateway, concurrency: number) {
  const answered = new Map<string, number>();
  let running = true;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const one = () =>
    new Promise<void>((resolve) => {
      const id = randomUUID();
      const req = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }), agent }, (res) => {
        res.resume();
        res.on('end', () => {
          answered.set(id, res.statusCode!);
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) await one();
  });
  return {
    answered,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

test('SIGKILL under traffic: after restart every seq is stored and sealed exactly once (or sealed as dropped), interrupted records included', async () => {
  const dataDir = tempDir('gw-seal-kill-');
  const env = { DATA_DIR: dataDir, AUDIT_SEAL_PERIOD_MS: PERIOD, AUDIT_BATCH_MAX_AGE_MS: '100', LOG_LEVEL: 'info' };
  const answered = new Map<string, number>();
  const runs: ChildGateway[] = [];
  for (let round = 0; round < 3; round++) {
    const gw = await runGateway(yaml(), env);
    runs.push(gw);
    const traffic = load(gw, 6);
    await sleep(600 + Math.random() * 1200); // past a period boundary or two: some seals are made, some not
    gw.kill('SIGKILL');
    await gw.exited;
    await traffic.stop();
    for (const [id, status] of traffic.answered) answered.set(id, status);
  }
  const last = await runGateway(yaml(), env);
  runs.push(last);
  expect(answered.size).toBeGreaterThan(50);
  await sleep(2500); // recovered periods sealed, the backlog shipped
  await stop(last);

  const { rows, seals, dropped } = await checkStoppedChain(dataDir);
  // Every sequence number from 1 to the last sealed is a stored row or a dropped one, exactly once.
  const lastSeq = seals[seals.length - 1].last_seq;
  const all = [...rows.map((r) => r.seq), ...dropped].sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
  // Every answered transaction is stored and sealed once, forwarded.
  const byTrace = new Map<string, typeof rows>();
  for (const r of rows) byTrace.set(r.trace_id, [...(byTrace.get(r.trace_id) ?? []), r]);
  for (const [id] of answered) expect({ id, rows: byTrace.get(id)?.map((r) => r.outcome) }).toEqual({ id, rows: ['forwarded'] });
  // What reached the provider unanswered was recorded (interrupted, or forwarded if its end was written) and sealed.
  for (const id of reachedProvider) if (!answered.has(id) && byTrace.has(id)) expect(byTrace.get(id)).toHaveLength(1);
  const interrupted = rows.filter((r) => r.outcome === 'interrupted').length;
  // One log line per seal over all runs (a kill can lose a line only if the log flush was cut off: never more than one per run).
  const lines = sealLogLines(...runs);
  const logged = new Set(lines.map((l) => String(l.digest)));
  expect(seals.filter((s) => !logged.has(s.digest)).length).toBeLessThanOrEqual(runs.length);
  process.stdout.write(
    `seal crash test: ${answered.size} answered, ${rows.length} rows sealed (${interrupted} interrupted), ${dropped.length} dropped seqs, ${seals.length} seals\n`,
  );
}, 120_000);

test('a spool segment holding records not yet sealed is kept after shipping; they are sealed after a SIGKILL', async () => {
  const dataDir = tempDir('gw-seal-keep-');
  const spool = join(dataDir, 'spool');
  // A long period (a minute) so that nothing is sealed while the segments are looked at.
  const msIntoMinute = Date.now() % 60_000;
  if (msIntoMinute > 30_000) await sleep(60_000 - msIntoMinute + 200);
  const env = { DATA_DIR: dataDir, AUDIT_SEGMENT_BYTES: '4096', AUDIT_BATCH_MAX_AGE_MS: '50', LOG_LEVEL: 'info' };
  const gw = await runGateway(yaml(), env);
  let ids: string[];
  try {
    await eventually(() => gw.stdout().includes('"audit store ready"'), 30_000, 'the audit store');
    ids = await requests(gw, 12); // several 4 KiB segments
    // Shipped: the checkpoint has moved past the first segments...
    const checkpointSegment = () => {
      try {
        return (JSON.parse(readFileSync(join(spool, 'checkpoint.json'), 'utf8')) as { segment: number }).segment;
      } catch {
        return 0;
      }
    };
    await eventually(() => checkpointSegment() > 2, 10_000, 'the checkpoint past segment 2');
    await sleep(300);
    const segments = readdirSync(spool).filter((f) => f.endsWith('.seg'));
    expect(segments.length).toBeGreaterThan(2);
    // ...yet the first segment is still there: its records are not sealed yet.
    expect(segments.sort()[0]).toMatch(/^0*1\.seg$/);
    expect(fileSeals(dataDir).filter((s) => s.records > 0)).toEqual([]);
  } finally {
    gw.kill('SIGKILL');
    await gw.exited;
  }
  // After the kill, a run with short periods seals the recovered records in their own (long-ended) period.
  const next = await runGateway(yaml(), { ...env, AUDIT_SEAL_PERIOD_MS: PERIOD });
  await eventually(() => next.stdout().includes('"audit period sealed"'), 10_000, 'a seal');
  // Sealed now: the next acknowledgements delete it.
  await waitFor(
    async () => {
      await requests(next, 1);
      return !readdirSync(spool).some((f) => /^0*1\.seg$/.test(f));
    },
    10_000,
    'segment 1 deleted once its records are sealed',
    300,
  );
  await sleep(1000); // the last records shipped
  await stop(next);
  const { rows } = await checkStoppedChain(dataDir);
  expect(rows.slice(0, 12).map((r) => r.trace_id)).toEqual(ids);
  expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
}, 150_000);

test('AUDIT_SIGNING_KEY_FILE signs the seals; an RSA key or garbage stops start-up with one line', async () => {
  const dir = tempDir('gw-seal-key-');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyFile = join(dir, 'signing.pem');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const dataDir = join(dir, 'data');
  const gw = await runGateway(yaml(), { DATA_DIR: dataDir, AUDIT_SIGNING_KEY_FILE: keyFile, AUDIT_SEAL_PERIOD_MS: PERIOD, LOG_LEVEL: 'info' });
  await requests(gw, 2);
  await eventually(() => fileSeals(dataDir).some((s: Seal) => s.last_seq >= 2), 10_000, 'a seal over the records');
  await stop(gw);
  expect(existsSync(join(dataDir, 'audit-signing-key.pem'))).toBe(false);
  for (const s of fileSeals(dataDir)) expect(s.key_id).toBe(keyId(publicKey));

  const rsa = join(dir, 'rsa.pem');
  writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'GARBAGE-CANARY-91 not a key\n');
  for (const [file, why] of [
    [rsa, /AUDIT_SIGNING_KEY_FILE: .*rsa\.pem holds an rsa key; the audit trail is signed with Ed25519/],
    [garbage, /AUDIT_SIGNING_KEY_FILE: .*garbage\.pem is not a PEM private key/],
    [join(dir, 'missing.pem'), /AUDIT_SIGNING_KEY_FILE: cannot read .*missing\.pem \(ENOENT\)/],
  ] as const) {
    const failed = await runGateway(yaml(), { DATA_DIR: join(dir, 'data2'), AUDIT_SIGNING_KEY_FILE: file }).then(
      () => {
        throw new Error(`started with ${file}`);
      },
      (err: { stderr: string; code: number }) => err,
    );
    expect(failed.code).toBe(1);
    const lines = failed.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^spine-gateway: cannot start: /);
    expect(lines[0]).toMatch(why);
    expect(lines[0]).not.toContain('GARBAGE-CANARY');
  }
}, 90_000);

const noFaults = diskFaultsUnavailable();
(noFaults ? test.skip : test)(
  `a seal file that cannot be written never ends the process; its seals are written when it can be${noFaults ? ` (skipped: ${noFaults})` : ''}`,
  async () => {
    const dataDir = tempDir('gw-seal-eperm-');
    const sealFile = join(dataDir, 'audit-seals.ndjson');
    const env = { DATA_DIR: dataDir, AUDIT_SEAL_PERIOD_MS: PERIOD, AUDIT_BATCH_MAX_AGE_MS: '100', LOG_LEVEL: 'info' };
    const gw = await runGateway(yaml(), env);
    let immutable = false;
    try {
      await eventually(() => fileSeals(dataDir).length > 0, 10_000, 'a first seal');
      chattr('+i', sealFile);
      immutable = true;
      const before = fileSeals(dataDir).length;
      await requests(gw, 3);
      await sleep(3500); // three periods sealed in memory, each append refused
      await requests(gw, 2); // still serving
      expect(fileSeals(dataDir).length).toBe(before);
      const errors = gw
        .stdout()
        .split('\n')
        .filter((l) => l.includes('audit seal file not writable'));
      expect(errors).toHaveLength(1); // one line per episode
      expect(errors[0]).toContain('"code":"EPERM"');
      chattr('-i', sealFile);
      immutable = false;
      await eventually(() => gw.stdout().includes('audit seal file writable again'), 5000, 'the file written again');
      await sleep(1200);
    } finally {
      if (immutable) chattr('-i', sealFile);
    }
    await stop(gw);
    const { rows } = await checkStoppedChain(dataDir);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  },
  60_000,
);

test('seals made while ClickHouse is unreachable are in the file, and reach the table after a restart (catch-up from the file)', async () => {
  const dataDir = tempDir('gw-seal-catchup-');
  const env = { DATA_DIR: dataDir, AUDIT_SEAL_PERIOD_MS: PERIOD, AUDIT_BATCH_MAX_AGE_MS: '100', LOG_LEVEL: 'info' };
  // A server where nothing listens: neither records nor seals can be inserted.
  const down = await runGateway(yaml(), { ...env, CLICKHOUSE_URL: `http://127.0.0.1:${await freePort()}/spine_audit` });
  await requests(down, 4);
  await sleep(2500);
  await stop(down);
  const filed = fileSeals(dataDir);
  expect(filed.length).toBeGreaterThanOrEqual(2);
  expect(filed[filed.length - 1].last_seq).toBe(4);
  // The same DATA_DIR on the embedded engine: the backlog ships, the file's seals are inserted.
  const up = await runGateway(yaml(), env);
  await eventually(() => up.stdout().includes('"audit store ready"'), 30_000, 'the audit store');
  await requests(up, 1);
  await sleep(2500);
  await stop(up);
  const { seals, rows } = await checkStoppedChain(dataDir);
  expect(seals.slice(0, filed.length)).toEqual(filed);
  expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
}, 90_000);

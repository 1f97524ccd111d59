import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { REPO, directoryYaml, eventually, okHandler, send, sspHeaders, startProvider, tempDir, type TestProvider } from '../helpers/test-kit';
import { runGateway, type ChildGateway } from '../helpers/child-gateway';
import { clickhouseServer, createOldServerSchema, type ClickHouseServer } from '../helpers/clickhouse-server';

/**
 * The network path against a real ClickHouse server (Debian's 18.16, schema management
 * off, a table the old server accepts): an outage under load loses nothing and fails
 * no request; a full spool answers 503 in closed mode and recovers; open mode keeps
 * serving and counts what it dropped.
 */
let provider: TestProvider;
let ch: ClickHouseServer;

beforeAll(async () => {
  provider = await startProvider(okHandler('{}'));
  ch = await clickhouseServer(tempDir('ch-server-'));
  await ch.start();
  await createOldServerSchema(ch);
}, 60_000);
afterAll(async () => {
  await ch?.stop();
  await provider.close();
});

function auditedGateway(env: Record<string, string> = {}): Promise<ChildGateway> {
  return runGateway(directoryYaml({ metadata: provider.root }), {
    CLICKHOUSE_URL: ch.url,
    AUDIT_SCHEMA_MANAGEMENT: 'false',
    AUDIT_BATCH_MAX_AGE_MS: '100',
    ...env,
  });
}

async function metric(gw: ChildGateway, name: string): Promise<number> {
  const text = (await send(`http://127.0.0.1:${gw.adminPort}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

function get(gw: ChildGateway, agent?: Agent): Promise<{ id: string; status: number; body: string }> {
  const id = randomUUID();
  return new Promise((resolve) => {
    const req = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }), agent: agent ?? false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ id, status: res.statusCode!, body }));
    });
    req.on('error', () => resolve({ id, status: 0, body: '' }));
    req.end();
  });
}

async function serverCounts(): Promise<Map<string, number>> {
  const text = await ch.sql("SELECT trace_id, count() FROM spine_audit.transactions FINAL WHERE outcome != 'in_flight' GROUP BY trace_id FORMAT TabSeparated");
  return new Map(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.split('\t')[0], Number(l.split('\t')[1])]),
  );
}

test('ClickHouse stopped under load: every request is served, and every record arrives exactly once', async () => {
  await ch.sql('TRUNCATE TABLE spine_audit.transactions');
  const gw = await auditedGateway();
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const results: Array<{ id: string; status: number }> = [];
  let running = true;
  const loops = Array.from({ length: 8 }, async () => {
    while (running) {
      results.push(await get(gw, agent));
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    await ch.stop();
    await new Promise((r) => setTimeout(r, 2500)); // the outage, under load
    const failuresDuringOutage = await metric(gw, 'spine_gateway_audit_insert_failures_total{kind="transient"}');
    const upDuringOutage = await metric(gw, 'spine_gateway_clickhouse_up');
    await ch.start();
    await new Promise((r) => setTimeout(r, 1000));
    running = false;
    await Promise.all(loops);
    expect(results.length).toBeGreaterThan(200);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(failuresDuringOutage).toBeGreaterThan(0);
    expect(upDuringOutage).toBe(0);
    // The backlog drains once the server is back.
    const deadline = Date.now() + 60_000;
    let counts = await serverCounts();
    while (results.some((r) => !counts.has(r.id)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      counts = await serverCounts();
    }
    expect(results.filter((r) => !counts.has(r.id)).map((r) => r.id)).toEqual([]);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // The counts reconcile: everything written was shipped; nothing pending, dropped or dead-lettered.
    const written = await metric(gw, 'spine_gateway_audit_records_written_total');
    expect(await metric(gw, 'spine_gateway_audit_records_shipped_total')).toBe(written);
    expect(await metric(gw, 'spine_gateway_audit_records_pending')).toBe(0);
    expect(await metric(gw, 'spine_gateway_audit_records_dropped_total')).toBe(0);
    expect(await metric(gw, 'spine_gateway_audit_records_dead_lettered_total')).toBe(0);
    process.stdout.write(
      `outage test: ${results.length} requests, all 200; ${counts.size} records; ${failuresDuringOutage} failed inserts during the outage\n`,
    );
  } finally {
    running = false;
    agent.destroy();
    gw.kill('SIGTERM');
    await gw.exited;
    if ((await send(`http://127.0.0.1:${ch.httpPort}/ping`).catch(() => null)) === null) await ch.start();
  }
}, 120_000);

test('full spool, closed mode: 503 AUDIT_UNAVAILABLE, then service again once the backlog ships', async () => {
  await ch.stop();
  const gw = await auditedGateway({ AUDIT_SPOOL_MAX_BYTES: '65536', AUDIT_SEGMENT_BYTES: '8192', AUDIT_FAILURE_MODE: 'closed' });
  try {
    let refused: { status: number; body: string } | null = null;
    for (let i = 0; i < 500 && refused === null; i++) {
      const r = await get(gw);
      if (r.status !== 200) refused = r;
    }
    expect(refused).not.toBeNull();
    expect(refused!.status).toBe(503);
    expect(JSON.parse(refused!.body).issue[0].details.coding[0].display).toBe('AUDIT_UNAVAILABLE');
    expect((await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).status).toBe(503);
    expect(provider.connections).toBeGreaterThan(0);
    await ch.start();
    const deadline = Date.now() + 60_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) {
      status = (await get(gw)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    expect((await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).status).toBe(200);
  } finally {
    gw.kill('SIGTERM');
    await gw.exited;
  }
}, 120_000);

test('full spool, open mode: keeps serving and counts every record it could not keep', async () => {
  await ch.stop();
  const gw = await auditedGateway({ AUDIT_SPOOL_MAX_BYTES: '65536', AUDIT_SEGMENT_BYTES: '8192', AUDIT_FAILURE_MODE: 'open' });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) statuses.push((await get(gw)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const dropped = await metric(gw, 'spine_gateway_audit_records_dropped_total');
    const written = await metric(gw, 'spine_gateway_audit_records_written_total');
    const held = await metric(gw, 'spine_gateway_audit_records_held');
    expect(dropped).toBeGreaterThan(0);
    expect(held).toBeGreaterThan(0);
    // Two records per transaction (in flight, final): every one was written, dropped (an in-flight
    // record the request went on without), or is held in memory (a final record waiting for room).
    expect(written + dropped + held).toBe(400);
    // ClickHouse returns, the backlog ships, segments are released: the held final records are written.
    await ch.start();
    const deadline = Date.now() + 60_000;
    while ((await metric(gw, 'spine_gateway_audit_records_held')) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await metric(gw, 'spine_gateway_audit_records_held')).toBe(0);
    expect((await metric(gw, 'spine_gateway_audit_records_written_total')) + (await metric(gw, 'spine_gateway_audit_records_dropped_total'))).toBe(400);
    expect(await metric(gw, 'spine_gateway_audit_writable')).toBe(1);
  } finally {
    gw.kill('SIGTERM');
    await gw.exited;
    if ((await send(`http://127.0.0.1:${ch.httpPort}/ping`).catch(() => null)) === null) await ch.start();
  }
}, 120_000);

test('a permanent failure dead-letters the batch (never skipped silently); the replay command brings it back once fixed', async () => {
  await ch.sql('DROP TABLE IF EXISTS spine_audit.transactions');
  const gw = await auditedGateway();
  try {
    const sent = [];
    for (let i = 0; i < 20; i++) sent.push(await get(gw));
    expect(sent.every((r) => r.status === 200)).toBe(true);
    const deadline = Date.now() + 20_000;
    while ((await metric(gw, 'spine_gateway_audit_records_dead_lettered_total')) < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await metric(gw, 'spine_gateway_audit_records_dead_lettered_total')).toBe(40);
    expect(await metric(gw, 'spine_gateway_audit_insert_failures_total{kind="permanent"}')).toBeGreaterThan(0);
    await eventually(() => /"code":"60".*audit batch dead-lettered/.test(gw.stdout()), 3000, 'the dead-letter log line');
    const deadLetters = join(gw.dir, 'data', 'dead-letter');
    expect(readdirSync(deadLetters).length).toBeGreaterThan(0);
    // The DBA fixes the cause, the operator replays.
    await createOldServerSchema(ch);
    const out = execFileSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'replay-dead-letters.js')], {
      env: { PATH: process.env.PATH, DATA_DIR: join(gw.dir, 'data'), CLICKHOUSE_URL: ch.url, AUDIT_SCHEMA_MANAGEMENT: 'false' },
    }).toString();
    expect(out).toMatch(/^replayed .*\.seg: \d+ records$/m);
    expect(readdirSync(deadLetters)).toEqual([]);
    const counts = await serverCounts();
    expect(sent.filter((r) => counts.get(r.id) !== 1)).toEqual([]);
  } finally {
    gw.kill('SIGTERM');
    await gw.exited;
  }
}, 120_000);

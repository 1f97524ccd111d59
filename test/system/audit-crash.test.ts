import { appendFileSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { directoryYaml, send, sspHeaders, startProvider, tempDir, type TestProvider } from '../helpers/test-kit';
import { runGateway, type ChildGateway } from '../helpers/child-gateway';

/**
 * The audit guarantee under SIGKILL: a child gateway under steady load is killed at
 * random moments several times and restarted on the same DATA_DIR. Afterwards every
 * trace ID that got a response, or reached the provider, is in ClickHouse exactly once:
 * complete where it completed, `interrupted` where it was in flight.
 */
let provider: TestProvider;
const reachedProvider = new Set<string>();

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    reachedProvider.add(String(req.headers['ssp-traceid']));
    setTimeout(() => res.end('{}'), Math.random() < 0.2 ? 150 : 2); // some transactions are long enough to be caught in flight
  });
});
afterAll(() => provider.close());

/** Sends requests with `concurrency` loops until stopped; records each trace ID and whether a response came back. */
function load(gw: ChildGateway, concurrency: number) {
  const answered = new Map<string, number>();
  const sent: string[] = [];
  let running = true;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const one = () =>
    new Promise<void>((resolve) => {
      const id = randomUUID();
      sent.push(id);
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
    sent,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

async function allRecords(adminPort: number): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  let cursor = '';
  for (;;) {
    const r = await send(`http://127.0.0.1:${adminPort}/audit/transactions?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    const page = JSON.parse(r.body.toString());
    rows.push(...page.transactions);
    if (!page.next_cursor) return rows;
    cursor = page.next_cursor;
  }
}

test('every transaction survives SIGKILL at random moments, exactly once', async () => {
  const dataDir = tempDir('gw-crash-');
  const env = { DATA_DIR: dataDir, AUDIT_BATCH_MAX_AGE_MS: '100', LOG_LEVEL: 'info' };
  const yaml = directoryYaml({ metadata: provider.root });
  const answered = new Map<string, number>();
  for (let round = 0; round < 4; round++) {
    const gw = await runGateway(yaml, env);
    const traffic = load(gw, 8);
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
    gw.kill('SIGKILL');
    await gw.exited;
    await traffic.stop();
    for (const [id, status] of traffic.answered) answered.set(id, status);
  }
  // A last, clean run ships everything (recovering the last kill's in-flight transactions first).
  const gw = await runGateway(yaml, env);
  try {
    expect(answered.size).toBeGreaterThan(100);
    const expected = new Set([...answered.keys(), ...reachedProvider]);
    let rows: Array<Record<string, unknown>> = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      rows = await allRecords(gw.adminPort);
      const found = new Set(rows.map((r) => String(r.trace_id)));
      if ([...expected].every((id) => found.has(id)) && rows.every((r) => r.outcome !== 'in_flight')) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(String(r.trace_id), (counts.get(String(r.trace_id)) ?? 0) + 1);
    const missing = [...expected].filter((id) => !counts.has(id));
    expect(missing).toEqual([]);
    expect([...counts.entries()].filter(([, c]) => c !== 1)).toEqual([]);
    const byId = new Map(rows.map((r) => [String(r.trace_id), r]));
    for (const [id, status] of answered) {
      expect({ id, outcome: byId.get(id)!.outcome, status: byId.get(id)!.status }).toEqual({ id, outcome: 'forwarded', status });
    }
    const outcomes = rows.reduce<Record<string, number>>((acc, r) => ({ ...acc, [String(r.outcome)]: (acc[String(r.outcome)] ?? 0) + 1 }), {});
    expect(Object.keys(outcomes).sort()).toEqual(expect.arrayContaining(['forwarded']));
    expect(rows.every((r) => r.outcome === 'forwarded' || r.outcome === 'interrupted')).toBe(true);
    process.stdout.write(
      `audit crash test: ${answered.size} answered, ${reachedProvider.size} reached the provider, ${rows.length} records: ${JSON.stringify(outcomes)}\n`,
    );
  } finally {
    gw.kill('SIGTERM');
    await gw.exited;
  }
}, 120_000);

test('a torn spool tail at start-up is cut, logged and counted, and never stops the gateway', async () => {
  const dataDir = tempDir('gw-torn-');
  const yaml = directoryYaml({ metadata: provider.root });
  const first = await runGateway(yaml, { DATA_DIR: dataDir });
  expect((await send(first.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
  first.kill('SIGKILL');
  await first.exited;
  const segment = join(
    dataDir,
    'spool',
    readdirSync(join(dataDir, 'spool'))
      .filter((f) => f.endsWith('.seg'))
      .sort()
      .pop()!,
  );
  appendFileSync(segment, Buffer.from([0x30, 0x01, 0x00, 0x00, 0xde, 0xad])); // half a record header: a torn write
  const gw = await runGateway(yaml, { DATA_DIR: dataDir });
  try {
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    const metrics = (await send(`http://127.0.0.1:${gw.adminPort}/metrics`)).body.toString();
    expect(metrics).toMatch(/^spine_gateway_audit_spool_corrupt_bytes_total 6$/m);
    expect(gw.stdout()).toMatch(/"bad_bytes":6.*audit spool: torn or corrupt tail skipped/);
  } finally {
    gw.kill('SIGTERM');
    await gw.exited;
  }
}, 60_000);

import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { directoryYaml, send, sspHeaders, startProvider, waitFor, type TestProvider } from '../helpers/test-kit';
import { logLines, metric, runGateway, type ChildGateway } from '../helpers/child-gateway';

/**
 * The audit store in its own process (README: Processes), killed with SIGKILL twice under
 * load: proxying goes on without one failed request, the spool grows while the store is
 * down, the store is restarted (logged and counted), the backlog drains, and every trace
 * ID sent is stored exactly once. While it is down, audit search answers 503 and says why,
 * and /readyz names the store's state without failing.
 */
let provider: TestProvider;
let gw: ChildGateway | null = null;

beforeAll(async () => {
  provider = await startProvider((_req, res) => void res.end('{}'));
});
afterAll(async () => {
  if (gw !== null && gw.child.exitCode === null) {
    gw.kill('SIGTERM');
    await gw.exited;
  }
  await provider.close();
});

/** Bounded load: `concurrency` loops until stopped, or `maxRequests` sent, or `maxMs` passed. */
function load(target: string, concurrency: number, maxRequests: number, maxMs: number) {
  const sent: string[] = [];
  const failures: string[] = [];
  let running = true;
  const until = Date.now() + maxMs;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const one = () =>
    new Promise<void>((resolve) => {
      const id = randomUUID();
      sent.push(id);
      const req = request(target, { headers: sspHeaders({ 'Ssp-TraceID': id }), agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) failures.push(`${id}: ${res.statusCode}`);
          resolve();
        });
        res.on('error', (err) => {
          failures.push(`${id}: ${err.message}`);
          resolve();
        });
      });
      req.on('error', (err) => {
        failures.push(`${id}: ${err.message}`);
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: concurrency }, async () => {
    while (running && sent.length < maxRequests && Date.now() < until) await one();
  });
  return {
    sent,
    failures,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

async function auditSql(adminPort: number, sql: string): Promise<{ status: number; rows: unknown[][]; body: string }> {
  const r = await send(`http://127.0.0.1:${adminPort}/audit/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql }),
  });
  const body = r.body.toString();
  return { status: r.status, rows: r.status === 200 ? (JSON.parse(body).rows as unknown[][]) : [], body };
}

const storeStarts = (g: ChildGateway) => logLines(g, /^audit store process (re)?started$/);

test('SIGKILL of the store process under load, twice: no failed request, the spool grows, restarted and counted, every record stored once', async () => {
  gw = await runGateway(directoryYaml({ metadata: provider.root }), {
    LOG_LEVEL: 'info',
    AUDIT_BATCH_MAX_AGE_MS: '100',
    // Small segments: shipped ones are deleted as the store goes, so the spool's size follows the backlog.
    AUDIT_SEGMENT_BYTES: '65536',
    // The check below lists every trace ID sent through /audit/sql.
    AUDIT_SQL_MAX_ROWS: '100000',
  });
  const g = gw;
  await waitFor(() => logLines(g, /^audit store ready$/).length > 0, 30_000, 'the audit store ready');
  expect(storeStarts(g)).toHaveLength(1);
  const gatewayPid = g.pid;
  expect(storeStarts(g)[0].store_pid).not.toBe(gatewayPid); // the engine is not in the gateway process
  expect(await metric(g, 'spine_gateway_audit_store_up')).toBe(1);

  // A budget a fast machine does not use up before the second kill (the time bound ends it anyway).
  const traffic = load(g.url(`${provider.root}/metadata`), 6, 50_000, 60_000);
  try {
    for (let kill = 1; kill <= 2; kill++) {
      await new Promise((r) => setTimeout(r, 1500));
      const starts = storeStarts(g);
      const storePid = Number(starts[starts.length - 1].store_pid);
      // The store's log lines reach the gateway's log, marked as the store's.
      expect(logLines(g, /^audit store ready$/).every((l) => l.process === 'store')).toBe(true);
      // Records written but not shipped (preallocated segments keep spool_bytes flat while they fill).
      const pendingAtKill = await metric(g, 'spine_gateway_audit_records_pending');
      const sentAtKill = traffic.sent.length;
      process.kill(storePid, 'SIGKILL');

      // While it is down: audit search answers 503 and says why; /readyz stays ready and names the store's state.
      let unavailable = '';
      let readyDetail = '';
      let peakPending = pendingAtKill;
      await waitFor(
        async () => {
          const r = await send(`http://127.0.0.1:${g.adminPort}/audit/transactions?limit=1`);
          peakPending = Math.max(peakPending, await metric(g, 'spine_gateway_audit_records_pending'));
          if (r.status === 503) {
            unavailable = r.body.toString();
            const ready = await send(`http://127.0.0.1:${g.adminPort}/readyz`);
            expect(ready.status).toBe(200);
            readyDetail = JSON.stringify(JSON.parse(ready.body.toString()).checks);
          }
          return unavailable !== '';
        },
        5000,
        'audit search to answer 503 while the store is down',
        10,
      );
      expect(unavailable).toMatch(/audit store unavailable/);
      expect(readyDetail).toMatch(/audit_store/);

      await waitFor(() => logLines(g, /^audit store process exited/).length >= kill, 5000, `the exit ${kill} logged`);
      const exit = logLines(g, /^audit store process exited/)[kill - 1];
      expect(exit).toMatchObject({ signal: 'SIGKILL' });
      expect(Number(exit.restart_in_ms)).toBeGreaterThan(0);
      await waitFor(() => storeStarts(g).length === kill + 1, 15_000, `restart ${kill}`);
      await waitFor(async () => (await metric(g, 'spine_gateway_audit_store_restarts_total')) === kill, 5000, `restart ${kill} counted`);
      // The backlog in the spool grew while no store read it (requests went on meanwhile).
      expect(traffic.sent.length).toBeGreaterThan(sentAtKill);
      expect(peakPending).toBeGreaterThan(pendingAtKill);
      expect(Number(storeStarts(g)[kill].store_pid)).not.toBe(storePid);
    }
  } finally {
    await traffic.stop();
  }
  expect(traffic.failures).toEqual([]);
  expect(traffic.sent.length).toBeGreaterThan(100);
  expect(g.child.exitCode).toBeNull(); // the gateway lived through it
  // The engine's memory is the store's: the gateway process stays small (issue: ≤ 150 MiB).
  expect(g.rssBytes()).toBeLessThan(150 * 1024 * 1024);

  // The backlog drains: every trace ID sent is stored exactly once.
  const n = traffic.sent.length;
  let counts: unknown[] = [];
  await waitFor(
    async () => {
      const r = await auditSql(g.adminPort, 'SELECT count() AS c, uniqExact(trace_id) AS d FROM spine_audit.transactions FINAL');
      counts = r.rows[0] ?? [];
      return Number(counts[0]) >= n;
    },
    60_000,
    `all ${n} records stored`,
    250,
  );
  expect(counts.map(Number)).toEqual([n, n]);
  const ids = await auditSql(g.adminPort, `SELECT trace_id FROM spine_audit.transactions FINAL ORDER BY trace_id LIMIT ${n + 10}`);
  expect(ids.status).toBe(200);
  expect(ids.rows.map((r) => String(r[0])).sort()).toEqual([...traffic.sent].sort());
  await waitFor(async () => (await metric(g, 'spine_gateway_audit_records_pending')) === 0, 30_000, 'nothing pending');
  expect(await metric(g, 'spine_gateway_audit_store_up')).toBe(1);

  // A clean stop takes the store process with it.
  const lastStore = Number(storeStarts(g)[2].store_pid);
  g.kill('SIGTERM');
  expect((await g.exited).code).toBe(0);
  await waitFor(
    () => {
      try {
        process.kill(lastStore, 0);
        return false;
      } catch {
        return true;
      }
    },
    5000,
    'the store process gone with the gateway',
  );
}, 180_000);

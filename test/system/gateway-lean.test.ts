import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { measureRssGrowth, runGateway, type ChildGateway } from '../helpers/child-gateway';
import { searchUntil } from '../helpers/audit-kit';
import { directoryYaml, okHandler, sspHeaders, startProvider, type TestProvider } from '../helpers/test-kit';

/**
 * Issue 13: the gateway process stays lean with audit on. The audit store (chDB, the
 * shipper, the investigations API) runs in its own process; the gateway's own process
 * never maps the engine's library, and its RSS stays within 150 MiB idle and after load.
 * Figures are printed for the README and the lead's note.
 */
const MiB = 1024 * 1024;
const LIMIT = 150 * MiB;
const REQUESTS = 3000;
const CONCURRENCY = 16;

let provider: TestProvider;
let gw: ChildGateway;

beforeAll(async () => {
  provider = await startProvider(okHandler());
  gw = await runGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', AUDIT_BATCH_MAX_AGE_MS: '50', LOG_LEVEL: 'info' });
}, 30_000);
afterAll(async () => {
  gw?.kill('SIGTERM');
  await Promise.race([gw?.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
  await provider?.close();
});

/** The process's mapped files (shared libraries among them). */
const mappedFiles = (pid: number) =>
  new Set(
    readFileSync(`/proc/${pid}/maps`, 'utf8')
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' ')),
  );
/** The gateway's child processes (the store). */
const children = (pid: number): number[] =>
  readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number));
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** `n` GETs through the gateway, `concurrency` at a time on kept-alive connections, each answered 200, within 60 s. */
async function load(n: number, concurrency: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const deadline = Date.now() + 60_000;
  let next = 0;
  let ok = 0;
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const req = request(gw.url(`${provider.root}/metadata`), { agent, headers: sspHeaders({ 'Ssp-TraceID': randomUUID() }) }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  const worker = async () => {
    while (next < n && Date.now() < deadline) {
      next++;
      if ((await one()) === 200) ok++;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return ok;
}

test('with audit on, the gateway process maps no chDB library; its RSS stays <= 150 MiB idle and after load', async () => {
  // The store is up and its records reach the investigations API through the admin port.
  const [first] = await loadTraced();
  await searchUntil(gw.adminPort, `trace_id=${first}`, (rows) => rows.length === 1, 30_000);
  const store = children(gw.pid);
  const engine = (pid: number) => [...mappedFiles(pid)].filter((f) => /chdb/i.test(f));
  const mapped = engine(gw.pid);

  await new Promise((r) => setTimeout(r, 1000));
  const idle = gw.rssBytes();
  const { result: ok, baseline, peakGrowth } = await measureRssGrowth(gw, () => load(REQUESTS, CONCURRENCY));
  const after = gw.rssBytes();
  const peak = baseline + peakGrowth;
  process.stdout.write(
    `gateway process RSS: idle ${mib(idle)}, peak under ${REQUESTS} requests x${CONCURRENCY} ${mib(peak)}, after ${mib(after)}; ` +
      `store process RSS ${store.map((pid) => mib(rssOf(pid))).join(', ') || '(no store process)'}; chDB files mapped by the gateway: ${mapped.length}\n`,
  );
  expect(ok).toBe(REQUESTS);
  expect(mapped).toEqual([]);
  // The engine is the store process's: seen where it belongs (so the check above looks for the right name).
  expect(store.some((pid) => engine(pid).length > 0)).toBe(true);
  expect(idle).toBeLessThanOrEqual(LIMIT);
  expect(peak).toBeLessThanOrEqual(LIMIT);
  expect(after).toBeLessThanOrEqual(LIMIT);
}, 120_000);

/** One traced request, answered 200; its trace ID. */
async function loadTraced(): Promise<string[]> {
  const id = randomUUID();
  await new Promise<void>((resolve, reject) => {
    const req = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }), agent: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
  return [id];
}

import { readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { benchProvider, closedLoop, LOAD_CORE, median, PROXY_CORE, started, startGateway, type LoadResult } from './harness';
import { procCommand, procCpuSeconds, procDescendants, procRssMiB } from './procs';

/**
 * BENCH_ONLY=workers npm run bench: issue 14's figures for WORKERS, in one run.
 *
 * Four variants of the gateway as shipped (audit on, the store running the embedded engine),
 * all up at once, only one under load at a time, runs alternating between them (the order
 * reversed every other round) and medians compared:
 *   1w-one    WORKERS=1, the whole product pinned to the proxy core, load on the other core;
 *   2w-one    WORKERS=2, the same core: the same hardware as 1w-one, so CPU per request
 *             compares the cost of the shape (primary, relay, two spools), not of the cores;
 *   1w-both   WORKERS=1 on both cores, the load generator and provider on both too;
 *   2w-both   WORKERS=2 on both cores, likewise: requests/s on both cores against one.
 * CPU per request is the whole product's (the primary or gateway, its workers and its store:
 * every descendant, from /proc), counted over the run and the idle wait after it.
 *
 * This machine has two cores and the load generator and provider share them with the
 * gateway in the "both" variants: they take a core's worth between them at full load, so
 * 2w-both against 1w-both is a lower bound of what two workers give on cores of their own.
 *
 * Bounded: each run lasts BENCH_WORKERS_SECONDS (4), BENCH_WORKERS_ROUNDS (3) rounds, each
 * idle wait at most 8 s; every process started here is stopped by PID.
 */
const SECONDS = Number(process.env.BENCH_WORKERS_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_WORKERS_ROUNDS ?? 3);
const CONNECTIONS = 32;
const BOTH = process.env.BENCH_BOTH_CORES ?? '0,1';
const SETTLE_DEADLINE_MS = 8000;
const IDLE_WINDOW_MS = 300;
const IDLE_SHARE = 0.05;
const READY_DEADLINE_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Variant {
  key: string;
  workers: number;
  cores: string;
  loadCores: string;
  url: string;
  pid: number;
  adminPort: number;
}

interface Run {
  load: LoadResult;
  cpuUs: number;
}

function treeCpu(pid: number): number {
  let total = 0;
  for (const p of [pid, ...procDescendants(pid)]) total += procCpuSeconds(p) ?? 0;
  return total;
}

/** CPU of a process tree, summing every process seen since it started (a worker replaced keeps its share). */
class TreeMeter {
  private seen = new Map<number, { first: number; last: number }>();
  constructor(private readonly pid: number) {
    this.sample(true);
  }
  sample(initial = false): void {
    for (const p of [this.pid, ...procDescendants(this.pid)]) {
      const cpu = procCpuSeconds(p);
      if (cpu === null) continue;
      const s = this.seen.get(p);
      if (s) s.last = cpu;
      else this.seen.set(p, { first: initial ? cpu : 0, last: cpu });
    }
  }
  seconds(): number {
    this.sample();
    let total = 0;
    for (const s of this.seen.values()) total += s.last - s.first;
    return total;
  }
}

async function settle(pids: number[]): Promise<void> {
  const t0 = performance.now();
  let before = pids.reduce((n, p) => n + treeCpu(p), 0);
  while (performance.now() - t0 < SETTLE_DEADLINE_MS) {
    await sleep(IDLE_WINDOW_MS);
    const now = pids.reduce((n, p) => n + treeCpu(p), 0);
    if (now - before < (IDLE_WINDOW_MS / 1000) * IDLE_SHARE) return;
    before = now;
  }
}

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Ready: /readyz 200 (with WORKERS=2, once both workers listen). */
async function whenReady(adminPort: number): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  while (Date.now() < deadline) {
    if ((await status(adminPort, '/readyz')) === 200) return;
    await sleep(100);
  }
  throw new Error(`gateway on admin port ${adminPort} not ready after ${READY_DEADLINE_MS / 1000} s`);
}

async function measuredRun(v: Variant, all: number[]): Promise<Run> {
  const meter = new TreeMeter(v.pid);
  const load = await closedLoop(v.url, SECONDS, CONNECTIONS, v.loadCores);
  await settle(all);
  return { load, cpuUs: (meter.seconds() * 1e6) / Math.max(1, load.requests) };
}

function describeTree(pid: number): string {
  const parts = [pid, ...procDescendants(pid)].map((p) => {
    const cmd = procCommand(p);
    const role = p === pid ? 'main' : /store-main\.js/.test(cmd) ? 'store' : 'worker';
    return `${role} ${(procRssMiB(p) ?? NaN).toFixed(0)} MiB`;
  });
  return parts.join(', ');
}

export async function workersBench(): Promise<void> {
  const t0 = performance.now();
  const loadAtStart = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const { root, dir, directoryEnv } = await benchProvider('spine-bench-workers-');
  const specs = [
    { key: '1w-one', workers: 1, cores: PROXY_CORE, loadCores: LOAD_CORE },
    { key: '2w-one', workers: 2, cores: PROXY_CORE, loadCores: LOAD_CORE },
    { key: '1w-both', workers: 1, cores: BOTH, loadCores: BOTH },
    { key: '2w-both', workers: 2, cores: BOTH, loadCores: BOTH },
  ];
  const variants: Variant[] = [];
  for (const s of specs) {
    const g = await startGateway(
      { ...directoryEnv, WORKERS: String(s.workers), DATA_DIR: `${dir}/${s.key}`, LOG_LEVEL: 'warn', DIRECTORY_WATCH: 'false' },
      undefined,
      [],
      s.cores,
    );
    await whenReady(g.adminPort);
    variants.push({ ...s, url: `http://127.0.0.1:${g.port}/${root}/metadata`, pid: g.child.pid!, adminPort: g.adminPort });
  }
  const all = variants.map((v) => v.pid);
  for (const v of variants) await closedLoop(v.url, 1, CONNECTIONS, v.loadCores); // warm-up
  await settle(all);
  const idle = new Map(variants.map((v) => [v.key, describeTree(v.pid)]));
  const runs = new Map<string, Run[]>(variants.map((v) => [v.key, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) runs.get(v.key)!.push(await measuredRun(v, all));
  }
  const fig = (key: string) => {
    const rs = runs.get(key)!;
    return {
      rps: median(rs.map((r) => r.load.rps)),
      cpuUs: median(rs.map((r) => r.cpuUs)),
      p99: median(rs.map((r) => r.load.p99Ms)),
      errors: rs.reduce((n, r) => n + r.load.errors, 0),
    };
  };
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  let out = `\nWORKERS, as shipped (audit on, embedded engine), ${CONNECTIONS} connections, 2 KiB GET, ${ROUNDS} rounds of ${SECONDS} s, medians\n`;
  out +=
    'variant'.padEnd(10) +
    'cores'.padStart(7) +
    'req/s'.padStart(10) +
    'CPU µs/req'.padStart(12) +
    'p99 ms'.padStart(9) +
    'failed'.padStart(8) +
    '   processes idle (RSS)\n';
  for (const v of variants) {
    const x = fig(v.key);
    out +=
      v.key.padEnd(10) +
      v.cores.padStart(7) +
      f(x.rps).padStart(10) +
      f(x.cpuUs, 1).padStart(12) +
      f(x.p99, 2).padStart(9) +
      String(x.errors).padStart(8) +
      `   ${idle.get(v.key)}\n`;
  }
  const cpuRatio = fig('2w-one').cpuUs / fig('1w-one').cpuUs;
  const rpsRatio = fig('2w-both').rps / fig('1w-both').rps;
  out += `\ntarget`.padEnd(70) + 'figure'.padStart(10) + '   result\n';
  out += `CPU per request, 2 workers vs 1, same core (<= 1.1x)`.padEnd(69) + `${f(cpuRatio, 2)}x`.padStart(10) + `   ${cpuRatio <= 1.1 ? 'pass' : 'MISS'}\n`;
  out += `requests/s, 2 workers on both cores vs 1 worker on both cores`.padEnd(69) + `${f(rpsRatio, 2)}x`.padStart(10) + '   (reported)\n';
  out +=
    `requests/s, 2 workers on both cores vs 1 worker on one core`.padEnd(69) +
    `${f(fig('2w-both').rps / fig('1w-one').rps, 2)}x`.padStart(10) +
    '   (reported)\n';
  const failed = variants.reduce((n, v) => n + fig(v.key).errors, 0);
  out += `no failed request in any run`.padEnd(69) + String(failed).padStart(10) + `   ${failed === 0 ? 'pass' : 'MISS'}\n`;
  out += `The load generator and provider share the two cores with the "both" variants, so the both-cores figures are a lower bound.\n`;
  out += `load average at the start ${loadAtStart}; ${f((performance.now() - t0) / 1000)} s in all.\n`;
  if (loadAtStart > 1) out += `BUSY MACHINE: the load average was ${loadAtStart} before the bench started: rerun on an idle machine.\n`;
  process.stdout.write(out);
  for (const child of started) if (child.exitCode === null) child.kill();
  if (process.env.BENCH_KEEP !== '1') {
    const deadline = performance.now() + 15_000;
    while (started.some((c) => c.exitCode === null && c.signalCode === null) && performance.now() < deadline) await sleep(100);
    rmSync(dir, { recursive: true, force: true });
  }
}

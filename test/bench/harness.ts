import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleToken } from '../../src/check';
import { freePort } from '../helpers/test-kit';

/**
 * What every bench mode shares: pinned processes (taskset), the load generators (wrk for
 * closed loops, test/bench/load.ts for the open loop), /proc readings, the bench provider
 * and interleaved closed-loop rounds. Every process started here is listed in `started`
 * and stopped by PID when the bench ends.
 */
export const ROOT = join(__dirname, '..', '..', '..');
export const DIST = join(ROOT, 'dist');
export const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
export const PROXY_CORE = process.env.BENCH_PROXY_CORE ?? '0';
export const LOAD_CORE = process.env.BENCH_LOAD_CORE ?? '1';
export const HEADERS = {
  'Ssp-TraceID': '629ea9ba-a077-4d99-b289-7a9b19fd4e03',
  'Ssp-From': '200000000359',
  'Ssp-To': '918999198993',
  'Ssp-InteractionID': 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
  // A realistic token (JWT_CHECK=report judges it as in production): its aud names no bench port, so each request has one finding.
  Authorization: `Bearer ${exampleToken({ aud: 'http://127.0.0.1/A20047/STU3/1/gpconnect/fhir', scope: 'organization/*.read' })}`,
};
export const started: ChildProcess[] = [];
export const hasWrk = (() => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    return (err as { status?: number }).status !== undefined; // wrk --version exits 1 but exists
  }
})();

export function pinned(core: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn('taskset', ['-c', core, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  return child;
}

/** Starts a server and resolves with its port, read from its first JSON line carrying one. */
export function startServer(core: string, script: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const child = pinned(core, [process.execPath, script], env);
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += c;
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line);
        const port = parsed.port ?? parsed.proxyPort;
        if (port) {
          child.stdout!.off('data', onData);
          child.stdout!.resume(); // keep draining logs
          return resolve({ child, port });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
}

/**
 * The gateway on free ports; resolves once its proxy port accepts connections (its logs are drained, not parsed).
 * `dist` picks another build (an A/B against an older checkout's dist/); `nodeArgs` go to node (--cpu-prof);
 * `core` is taskset's core list (the proxy core by default).
 */
export async function startGateway(
  env: Record<string, string>,
  dist = DIST,
  nodeArgs: string[] = [],
  core = PROXY_CORE,
): Promise<{ child: ChildProcess; port: number; adminPort: number }> {
  const port = await freePort();
  const adminPort = await freePort();
  const child = pinned(core, [process.execPath, ...nodeArgs, join(dist, 'src/main.js')], {
    ...env,
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
  });
  child.stdout!.resume();
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) return { child, port, adminPort };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('gateway did not start');
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

export function run(core: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const child = pinned(core, args, env);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited ${code}`))));
  });
}

export function ms(value: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(value)!;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** A closed loop of `connections` against `url` for `seconds`, the generator pinned to `core` (the load core by default). */
export async function closedLoop(url: string, seconds: number, connections = 32, core = LOAD_CORE): Promise<LoadResult> {
  if (!hasWrk) {
    return JSON.parse(
      await run(core, [process.execPath, join(DIST, 'test/bench/load.js')], {
        URL: url,
        HEADERS: JSON.stringify(HEADERS),
        MODE: 'closed',
        CONNECTIONS: String(connections),
        SECONDS: String(seconds),
      }),
    );
  }
  const headerArgs = Object.entries(HEADERS).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const out = await run(core, ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...headerArgs, url]);
  const requests = Number(/(\d+) requests in/.exec(out)![1]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requests,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]),
    p50Ms: ms(/\n\s+50%\s+(\S+)/.exec(out)![1]),
    p99Ms: ms(/\n\s+99%\s+(\S+)/.exec(out)![1]),
    errors: non2xx ? Number(non2xx[1]) : 0,
  };
}

export async function fixedRate(url: string, rate: number, seconds: number): Promise<LoadResult> {
  return JSON.parse(
    await run(LOAD_CORE, [process.execPath, join(DIST, 'test/bench/load.js')], {
      URL: url,
      HEADERS: JSON.stringify(HEADERS),
      MODE: 'fixed',
      RATE: String(rate),
      SECONDS: String(seconds),
    }),
  );
}

export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface Target {
  name: string;
  base: string;
  target: string;
  pid: number | null;
}

/** One closed-loop run against a target: wrk's figures and the proxy's CPU per request. */
export async function closedRun(t: Target, connections: number): Promise<{ load: LoadResult; cpuUs: number }> {
  const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
  const load = await closedLoop(t.base + t.target, SECONDS, connections);
  return { load, cpuUs: t.pid ? ((cpuSeconds(t.pid) - cpu0) * 1e6) / load.requests : NaN };
}

/**
 * The closed-loop runs alternate between the targets, ROUNDS times, all processes up
 * at once (only one under load at a time): the machine's drift between runs (±10% seen
 * here) then falls on every target alike, and the medians are compared.
 */
export async function closedLoopRounds(targets: Target[], connections = 32): Promise<Map<Target, { closed: LoadResult; cpuUs: number }>> {
  for (const t of targets) await closedLoop(t.base + t.target, 1, connections); // warm-up
  const runs = new Map<Target, Array<{ load: LoadResult; cpuUs: number }>>(targets.map((t) => [t, []]));
  for (let round = 0; round < ROUNDS; round++) for (const t of targets) runs.get(t)!.push(await closedRun(t, connections));
  const out = new Map<Target, { closed: LoadResult; cpuUs: number }>();
  for (const [t, rs] of runs) {
    const byRps = [...rs].sort((a, b) => a.load.rps - b.load.rps)[Math.floor(rs.length / 2)];
    out.set(t, { closed: { ...byRps.load, rps: median(rs.map((r) => r.load.rps)) }, cpuUs: median(rs.map((r) => r.cpuUs)) });
  }
  return out;
}

/**
 * The bench's GP Connect provider on the load core, and the shipped directory pointed at
 * it in a new temporary folder: what every gateway of a comparison is started with.
 */
export async function benchProvider(
  prefix: string,
): Promise<{ provider: { child: ChildProcess; port: number }; root: string; dir: string; directoryEnv: Record<string, string> }> {
  const provider = await startServer(LOAD_CORE, join(DIST, 'test/bench/provider.js'), {});
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const directoryFile = join(dir, 'directory.yaml');
  writeFileSync(
    directoryFile,
    readFileSync(join(ROOT, 'config', 'directory.yaml'), 'utf8')
      .split('http://127.0.0.1:8081')
      .join(`http://127.0.0.1:${provider.port}`),
  );
  const directoryEnv = { DIRECTORY_FILE: directoryFile, INTERACTIONS_FILE: join(ROOT, 'config', 'gpconnect-interactions.json') };
  return { provider, root: `http://127.0.0.1:${provider.port}/A20047/STU3/1/gpconnect/fhir`, dir, directoryEnv };
}

/** A counter or gauge from the gateway's /metrics (admin port), summed over its label sets; NaN when absent or unreachable. */
export function gatewayMetric(adminPort: number, name: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port: adminPort, path: '/metrics', timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let sum = NaN;
        for (const line of text.split('\n'))
          if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{'))
            sum = (Number.isNaN(sum) ? 0 : sum) + Number(line.split(' ').pop());
        resolve(sum);
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(NaN));
  });
}

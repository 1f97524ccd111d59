import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { benchProvider, closedLoop, PROXY_CORE, LOAD_CORE, ROOT, startGateway } from './harness';
import { procCpuSeconds, productProcesses, threadCpuByName } from './procs';

/**
 * BENCH_ONLY=profile npm run bench: where the gateway's time goes under load.
 *
 * The gateway (BENCH_PROFILE=shipped, the default; or spool, or off) runs pinned to the
 * proxy core under `node --cpu-prof`, takes BENCH_PROFILE_SECONDS (default 10) of wrk at
 * 32 connections, and is stopped with SIGTERM, which writes its profile. Only the samples
 * taken during the load run count (V8's profile clock is the same monotonic clock as
 * process.hrtime, so the run's window is cut out of the profile exactly: start-up, the
 * engine loading and shutdown are left out). Printed: the top functions by self time,
 * as a share of all samples in the window and of the busy ones ((idle) left out), for the
 * proxy process, and for any child that wrote a profile too (a store process started by
 * fork() inherits --cpu-prof).
 */

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}
export interface SelfTime {
  name: string;
  location: string;
  us: number;
  share: number;
  busyShare: number;
}

function location(url: string, line: number): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? url.slice('file://'.length) : url;
  const shown = path.startsWith(ROOT) ? relative(ROOT, path) : path;
  return `${shown}:${line + 1}`;
}

/**
 * Self time per function (name and location) over the samples whose time falls in
 * [fromUs, toUs] of the profile's clock (the whole profile by default), largest first.
 */
export function selfTimes(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity): { top: SelfTime[]; totalUs: number; idleUs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const sums = new Map<string, { name: string; location: string; us: number }>();
  let t = profile.startTime;
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    // A sample's weight is the time until the next one (the last one: until the end).
    const next = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : profile.endTime - t;
    if (t < fromUs || t > toUs || next <= 0) continue;
    const frame = byId.get(profile.samples[i])!.callFrame;
    const name = frame.functionName || '(anonymous)';
    const loc = location(frame.url, frame.lineNumber);
    const key = `${name}\0${loc}`;
    const entry = sums.get(key) ?? { name, location: loc, us: 0 };
    entry.us += next;
    sums.set(key, entry);
    totalUs += next;
    if (name === '(idle)') idleUs += next;
  }
  const busy = totalUs - idleUs;
  const top = [...sums.values()]
    .sort((a, b) => b.us - a.us)
    .map((e) => ({ ...e, share: totalUs > 0 ? e.us / totalUs : 0, busyShare: e.name === '(idle)' || busy <= 0 ? NaN : e.us / busy }));
  return { top, totalUs, idleUs };
}

/** Where a function lives: the gateway's code, a dependency, Node's own JavaScript, or native/VM (no script). */
function area(e: SelfTime): string {
  if (e.name === '(idle)') return 'idle';
  if (e.name === '(garbage collector)') return 'GC';
  if (e.location.includes('node_modules')) return 'dependencies';
  if (e.location.startsWith('dist/src') || e.location.startsWith('src/')) return 'gateway code';
  if (e.location.startsWith('node:')) return 'Node internals';
  return 'native and VM';
}

/**
 * The commonest caller chains (up to `depth` frames, nearest first) of the samples in a
 * function (by name and location), in the window: who makes the time in a hot native
 * function such as `writeBuffer` or `fdatasync`.
 */
export function callers(
  profile: CpuProfile,
  name: string,
  loc: string,
  fromUs = -Infinity,
  toUs = Infinity,
  depth = 5,
): Array<{ chain: string; share: number }> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frameName = (id: number) => {
    const f = byId.get(id)!.callFrame;
    const file = f.url.split('/').pop() ?? '';
    return `${f.functionName || '(anonymous)'}${file ? ` (${file})` : ''}`;
  };
  const counts = new Map<string, number>();
  let total = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    const frame = byId.get(profile.samples[i])!.callFrame;
    if ((frame.functionName || '(anonymous)') !== name || location(frame.url, frame.lineNumber) !== loc) continue;
    const chain: string[] = [];
    for (let id = parent.get(profile.samples[i]); id !== undefined && chain.length < depth; id = parent.get(id)) chain.push(frameName(id));
    const key = chain.join(' < ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([chain, n]) => ({ chain, share: n / Math.max(1, total) }));
}

export function formatSelfTimes(title: string, r: ReturnType<typeof selfTimes>, count = 15): string {
  let out = `\n${title}: ${(r.totalUs / 1e6).toFixed(1)} s sampled, ${((100 * (r.totalUs - r.idleUs)) / Math.max(1, r.totalUs)).toFixed(1)}% busy\n`;
  const areas = new Map<string, number>();
  for (const e of r.top) areas.set(area(e), (areas.get(area(e)) ?? 0) + e.us);
  out += `  by area (% of busy): ${[...areas]
    .filter(([a]) => a !== 'idle')
    .sort((a, b) => b[1] - a[1])
    .map(([a, us]) => `${a} ${((100 * us) / Math.max(1, r.totalUs - r.idleUs)).toFixed(1)}%`)
    .join(', ')}\n`;
  out += `  ${'% all'.padStart(6)} ${'% busy'.padStart(7)}  function (location)\n`;
  for (const e of r.top.slice(0, count))
    out += `  ${(100 * e.share).toFixed(1).padStart(6)} ${Number.isFinite(e.busyShare) ? (100 * e.busyShare).toFixed(1).padStart(7) : '-'.padStart(7)}  ${e.name}${e.location ? ` (${e.location})` : ''}\n`;
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

export async function profileBench(): Promise<void> {
  const variant = process.env.BENCH_PROFILE ?? 'shipped';
  const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
  const count = Number(process.env.BENCH_PROFILE_TOP ?? 15);
  const extra: Record<string, Record<string, string>> = {
    shipped: {},
    spool: { CLICKHOUSE_URL: 'http://default@127.0.0.1:9/spine_audit' },
    off: { AUDIT_ENABLED: 'false' },
  };
  if (!(variant in extra)) throw new Error(`BENCH_PROFILE=${variant}: expected shipped, spool or off`);
  const { provider, root, dir, directoryEnv } = await benchProvider('gw-bench-profile-');
  const profDir = join(dir, 'cpu-profiles');
  const gw = await startGateway({ ...directoryEnv, ...extra[variant], DATA_DIR: join(dir, 'data') }, undefined, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  const pid = gw.child.pid!;
  const url = `http://127.0.0.1:${gw.port}/${root}/metadata`;
  await closedLoop(url, 2, 32); // warm-up (the JIT, the engine's first inserts), outside the window
  await sleep(1000);
  const children = productProcesses(pid).children;
  const threads0 = [pid, ...children].map((p) => ({ pid: p, cpu: procCpuSeconds(p) ?? 0, threads: threadCpuByName(p) }));
  const from = nowUs();
  const load = await closedLoop(url, seconds, 32);
  const to = nowUs();
  // The V8 profile sees only the main JavaScript thread: the process's other threads (libuv's
  // pool doing fdatasync, V8's GC helpers, the engine's native threads) are read from /proc.
  let threadsOut = '';
  for (const t of threads0) {
    const total = (procCpuSeconds(t.pid) ?? t.cpu) - t.cpu;
    const after = threadCpuByName(t.pid);
    const rows = [...after].map(([name, cpu]) => [name, cpu - (t.threads.get(name) ?? 0)] as const).filter(([, cpu]) => cpu > 0);
    rows.sort((a, b) => b[1] - a[1]);
    threadsOut +=
      `  ${t.pid === pid ? 'proxy process' : 'child'} ${t.pid}: ${total.toFixed(2)} CPU-s over ${seconds} s (${((100 * total) / seconds).toFixed(0)}% of a core), ` +
      `${((total * 1e6) / Math.max(1, load.requests)).toFixed(1)} µs per request; by thread: ` +
      rows
        .slice(0, 8)
        .map(([name, cpu]) => `${name} ${((100 * cpu) / Math.max(total, 0.01)).toFixed(0)}%`)
        .join(', ') +
      '\n';
  }
  process.stdout.write(
    `profile: gateway (${variant}) pid ${pid} on core ${PROXY_CORE}${children.length ? `, children ${children.join(', ')}` : ''}; wrk 32 connections from core ${LOAD_CORE}, ` +
      `${seconds} s: ${load.rps.toFixed(0)} req/s, ${load.errors} errors\n` +
      threadsOut,
  );
  // SIGTERM: the gateway shuts down and exits, and node writes the profile on exit. Bounded.
  const exited = new Promise<void>((resolve) => gw.child.once('exit', () => resolve()));
  gw.child.kill('SIGTERM');
  const ok = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
  if (!ok) {
    gw.child.kill('SIGKILL');
    throw new Error('the gateway did not exit within 30 s of SIGTERM: no profile written');
  }
  await sleep(500); // a child's profile is written as it exits, just after its parent
  provider.child.kill();
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  // Node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
  const pidOf = (f: string) => Number(f.split('.')[3]);
  const proxyFile = files.find((f) => pidOf(f) === pid);
  if (!proxyFile) throw new Error(`no profile of pid ${pid} in ${profDir} (${files.join(', ') || 'none'})`);
  const read = (f: string) => JSON.parse(readFileSync(join(profDir, f), 'utf8')) as CpuProfile;
  const proxyProfile = read(proxyFile);
  const proxyTimes = selfTimes(proxyProfile, from, to);
  process.stdout.write(formatSelfTimes(`proxy process ${pid}, top ${count} functions by self time during the load`, proxyTimes, count));
  // Who calls the five busiest functions (the VM's own entries, in parentheses, have no callers worth showing).
  process.stdout.write('  callers of the five busiest (commonest chain, nearest caller first):\n');
  for (const e of proxyTimes.top.filter((x) => !x.name.startsWith('(')).slice(0, 5)) {
    const top = callers(proxyProfile, e.name, e.location, from, to)[0];
    if (top) process.stdout.write(`    ${e.name}: ${(100 * top.share).toFixed(0)}% from ${top.chain || '(root)'}\n`);
  }
  for (const f of files.filter((x) => x !== proxyFile))
    process.stdout.write(formatSelfTimes(`child process ${pidOf(f)}, top ${count} by self time during the load`, selfTimes(read(f), from, to), count));
  process.stdout.write(`\nprofiles kept in ${profDir} (open them in Chrome DevTools, Performance tab).\n`);
}

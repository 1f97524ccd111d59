import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { measureDrain } from './audit-drain';
import {
  benchProvider,
  closedLoopRounds,
  cpuSeconds,
  DIST,
  fixedRate,
  hasWrk,
  HEADERS,
  LOAD_CORE,
  PROXY_CORE,
  ROOT,
  ROUNDS,
  SECONDS,
  median,
  rssMiB,
  run,
  started,
  startGateway,
  startServer,
  type LoadResult,
  type Target,
} from './harness';
import { profileBench } from './profile';
import { targetsBench } from './targets';
import { workersBench } from './workers';
import { interactionCheckBench } from './interaction-check-bench';
import { investigationsBench } from './investigations';
import { jwtCheckBench } from './jwt-check-bench';
import { spoolBench } from './spool-bench';
import { verifyBench } from './verify-bench';
import { TestCa } from '../helpers/pki';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalRecordBench } from './final-record';

/**
 * npm run bench: provider, proxies and load generator on loopback. Each proxy under
 * test is pinned to core 0; the provider and the load generator share core 1 (taskset).
 * Columns: (a) direct to the provider, (b) a bare Node proxy, (c) the gateway.
 * Bounded: every load run has a fixed duration; every process started here is stopped by PID.
 */

/** Streams /big through `url` once; wall time and the peak RSS growth of `pid` while it runs. */
function bigDownload(url: string, pid: number | null): Promise<{ seconds: number; bytes: number; rssGrowthMiB: number }> {
  return new Promise((resolve, reject) => {
    const base = pid ? rssMiB(pid) : 0;
    let peak = base;
    const timer = setInterval(() => pid && (peak = Math.max(peak, rssMiB(pid))), 10);
    const t0 = performance.now();
    const req = request(url, { headers: HEADERS, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => {
        clearInterval(timer);
        if (pid) peak = Math.max(peak, rssMiB(pid));
        resolve({ seconds: (performance.now() - t0) / 1000, bytes, rssGrowthMiB: peak - base });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

type Big = Awaited<ReturnType<typeof bigDownload>>;
interface Column {
  name: string;
  closed: LoadResult;
  cpuUsPerReqClosed: number;
  fixed: LoadResult;
  cpuUsPerReqFixed: number;
  bigCold: Big;
  bigWarm: Big;
  bigWarmMaxGrowth: number;
}

async function measure(t: Target, closed: { closed: LoadResult; cpuUs: number }): Promise<Column> {
  const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
  const fixed = await fixedRate(t.base + t.target, 1000, SECONDS);
  const cpuUsPerReqFixed = t.pid ? ((cpuSeconds(t.pid) - cpu0) * 1e6) / fixed.requests : NaN;
  const bigTarget = t.target.replace(/metadata$/, 'metadata?big');
  // The first large transfer grows the heap once; then the median of three warm ones, and their worst.
  const bigCold = await bigDownload(t.base + bigTarget, t.pid);
  const warm: Big[] = [];
  for (let i = 0; i < 3; i++) warm.push(await bigDownload(t.base + bigTarget, t.pid));
  warm.sort((x, y) => x.rssGrowthMiB - y.rssGrowthMiB);
  return {
    name: t.name,
    closed: closed.closed,
    cpuUsPerReqClosed: closed.cpuUs,
    fixed,
    cpuUsPerReqFixed,
    bigCold,
    bigWarm: warm[1],
    bigWarmMaxGrowth: warm[2].rssGrowthMiB,
  };
}

function table(cols: Column[]): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const rows: Array<[string, (c: Column) => string]> = [
    ['2 KiB GET, 32 connections: requests/s', (c) => f(c.closed.rps)],
    ['  p50 / p99 latency (ms)', (c) => `${f(c.closed.p50Ms, 2)} / ${f(c.closed.p99Ms, 2)}`],
    ['  proxy CPU per request (µs)', (c) => f(c.cpuUsPerReqClosed, 1)],
    ['  errors (non-2xx)', (c) => String(c.closed.errors)],
    ['2 KiB GET, fixed 1,000 req/s: p50 / p99 (ms)', (c) => `${f(c.fixed.p50Ms, 3)} / ${f(c.fixed.p99Ms, 3)}`],
    ['  proxy CPU per request (µs)', (c) => f(c.cpuUsPerReqFixed, 1)],
    ['100 MiB streamed response: wall time (s), cold / warm', (c) => `${f(c.bigCold.seconds, 2)} / ${f(c.bigWarm.seconds, 2)}`],
    [
      '  proxy RSS growth (MiB), cold / warm median (max)',
      (c) => `${f(c.bigCold.rssGrowthMiB, 1)} / ${f(c.bigWarm.rssGrowthMiB, 1)} (${f(c.bigWarmMaxGrowth, 1)})`,
    ],
  ];
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  const colWidth = 22;
  let out = ''.padEnd(width) + cols.map((c) => c.name.padStart(colWidth)).join('') + '\n';
  for (const [label, get] of rows) out += label.padEnd(width) + cols.map((c) => get(c).padStart(colWidth)).join('') + '\n';
  return out;
}

/**
 * BENCH_ONLY=group-commit: the spool's group commit with no extra delay
 * (AUDIT_GROUP_COMMIT_MS=0: a group commits as soon as the previous fdatasync returns)
 * against extra delays, audit on and spool only: closed-loop rounds interleaved
 * (requests/s, CPU, fdatasyncs per request) and p50/p99 at a fixed 1,000 requests/s.
 */
async function groupCommitComparison(): Promise<void> {
  const { provider, root, dir, directoryEnv } = await benchProvider('gw-bench-gc-');
  const delays = (process.env.BENCH_GROUP_COMMIT_DELAYS ?? '0,2').split(',');
  const targets: Target[] = [];
  const procs = [];
  for (const delay of delays) {
    const gw = await startGateway({
      ...directoryEnv,
      CLICKHOUSE_URL: 'http://default@127.0.0.1:9/spine_audit', // spool only: the store is unreachable
      AUDIT_GROUP_COMMIT_MS: delay,
      DATA_DIR: join(dir, `delay-${delay}`),
    });
    procs.push(gw);
    targets.push({ name: `AUDIT_GROUP_COMMIT_MS=${delay}`, base: `http://127.0.0.1:${gw.port}/`, target: `${root}/metadata`, pid: gw.child.pid! });
  }
  for (const connections of [32, 128]) {
    const results = await closedLoopRounds(targets, connections);
    for (const t of targets) {
      const r = results.get(t)!;
      process.stdout.write(
        `  ${t.name.padEnd(24)} ${connections} connections: ${r.closed.rps.toFixed(0).padStart(6)} req/s   p50 ${r.closed.p50Ms.toFixed(2)} ms   p99 ${r.closed.p99Ms.toFixed(2)} ms   CPU ${r.cpuUs.toFixed(1)} us/req\n`,
      );
    }
  }
  for (const t of targets) {
    const fixed = await fixedRate(t.base + t.target, 1000, SECONDS);
    process.stdout.write(
      `  ${t.name.padEnd(24)} fixed 1,000 req/s: p50 ${fixed.p50Ms.toFixed(3)} ms   p99 ${fixed.p99Ms.toFixed(3)} ms   errors ${fixed.errors}\n`,
    );
  }
  for (const p of procs) p.child.kill();
  provider.child.kill();
}

/**
 * BENCH_ONLY=ab BENCH_BASELINE=<another checkout, built>: this build against that one,
 * audit off and audit on (spool only), closed-loop rounds interleaved so the machine's
 * drift falls on both alike. The check that a change costs nothing measurable.
 */
async function abComparison(baseline: string): Promise<void> {
  const { root, dir, directoryEnv } = await benchProvider('gw-bench-ab-');
  const builds = [
    { name: 'baseline', dist: join(baseline, 'dist') },
    { name: 'this build', dist: DIST },
  ];
  for (const [mode, extra, connections] of [
    ['audit off', { AUDIT_ENABLED: 'false' }, 32],
    ['audit on, spool only', { CLICKHOUSE_URL: 'http://default@127.0.0.1:9/spine_audit' }, 128],
  ] as const) {
    const targets: Target[] = [];
    const procs = [];
    for (const b of builds) {
      const gw = await startGateway({ ...directoryEnv, ...extra, DATA_DIR: join(dir, `${b.name}-${mode}`.replace(/\W+/g, '-')) }, b.dist);
      procs.push(gw);
      targets.push({ name: `${b.name}, ${mode}`, base: `http://127.0.0.1:${gw.port}/`, target: `${root}/metadata`, pid: gw.child.pid! });
    }
    const results = await closedLoopRounds(targets, connections);
    const [a, b] = targets.map((t) => results.get(t)!);
    for (const t of targets) {
      const r = results.get(t)!;
      process.stdout.write(
        `  ${t.name.padEnd(34)}${r.closed.rps.toFixed(0).padStart(8)} req/s   p99 ${r.closed.p99Ms.toFixed(2).padStart(6)} ms   CPU ${r.cpuUs.toFixed(1)} us/req   errors ${r.closed.errors}\n`,
      );
    }
    process.stdout.write(
      `  ${mode}: this build / baseline: requests/s ${(b.closed.rps / a.closed.rps).toFixed(3)}x, CPU per request ${(b.cpuUs / a.cpuUs).toFixed(3)}x (${connections} connections, median of ${ROUNDS})\n`,
    );
    for (const p of procs) p.child.kill();
  }
}

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === 'targets') return targetsBench(); // issue 13's targets, interleaved (test/bench/targets.ts)
  if (process.env.BENCH_ONLY === 'workers') return workersBench(); // issue 14: WORKERS=2 against 1, one core and both (test/bench/workers.ts)
  if (process.env.BENCH_ONLY === 'profile') return profileBench(); // where the proxy's time goes (test/bench/profile.ts)
  if (process.env.BENCH_ONLY === 'ab') {
    const baseline = process.env.BENCH_BASELINE;
    if (!baseline) throw new Error('BENCH_ONLY=ab needs BENCH_BASELINE: a checkout of the baseline commit with npm run build done in it');
    return abComparison(baseline);
  }
  if (process.env.BENCH_ONLY === 'export' || process.env.BENCH_ONLY === 'summary') return investigationsBench(process.env.BENCH_ONLY, PROXY_CORE);
  if (process.env.BENCH_ONLY === 'group-commit') return groupCommitComparison();
  if (process.env.BENCH_ONLY === 'final-record') return finalRecordBench(); // issue 13: the end-facts final record's bytes, encode and merge CPU
  if (process.env.BENCH_ONLY === 'spool') return spoolBench(); // BENCH_ONLY=spool npm run bench: preallocated vs appended segments, latin1 framing
  if (process.env.BENCH_ONLY === 'checks') return interactionCheckBench(); // BENCH_ONLY=checks npm run bench: the checks' cost per request, in process
  if (process.env.BENCH_ONLY === 'verify') return verifyBench(); // BENCH_ONLY=verify npm run bench (BENCH_VERIFY_RECORDS, default 1,000,000)
  if (process.env.BENCH_ONLY === 'jwt') return jwtCheckBench(); // BENCH_ONLY=jwt npm run bench: the JWT check's CPU per request in report mode
  if (process.env.BENCH_ONLY === 'tls') {
    // Just the TLS comparison (BENCH_ONLY=tls npm run bench).
    const dir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
    return tlsComparison({ DATA_DIR: join(dir, 'data'), INTERACTIONS_FILE: join(ROOT, 'config', 'gpconnect-interactions.json') }, dir);
  }
  const { provider, root, dir, directoryEnv } = await benchProvider('gw-bench-');
  process.stdout.write(
    `load generator: ${hasWrk ? 'wrk (closed loop) + Node open loop (fixed rate)' : 'Node (wrk not installed: apt-get install wrk)'}; ` +
      `${SECONDS}s per run, closed loop: median of ${ROUNDS} interleaved rounds; proxies on core ${PROXY_CORE}, provider and load on core ${LOAD_CORE}\n`,
  );

  const bare = await startServer(PROXY_CORE, join(DIST, 'test/bench/bare-proxy.js'), {});
  const gatewayEnv = { ...directoryEnv, DATA_DIR: join(dir, 'data') };
  const noAudit = await startGateway({ ...gatewayEnv, AUDIT_ENABLED: 'false' });
  // Without audit and without the per-transaction log line, to show what that line costs.
  const quiet = await startGateway({ ...gatewayEnv, AUDIT_ENABLED: 'false', LOG_LEVEL: 'warn' });
  // Without per-request metrics, to show what they cost (target: within 5%).
  const noMetrics = await startGateway({ ...gatewayEnv, AUDIT_ENABLED: 'false', METRICS_ENABLED: 'false' });
  const direct: Target = { name: '(a) direct', base: `http://127.0.0.1:${provider.port}`, target: '/A20047/STU3/1/gpconnect/fhir/metadata', pid: null };
  const targets: Target[] = [
    direct,
    { name: '(b) bare Node proxy', base: `http://127.0.0.1:${bare.port}/`, target: `${root}/metadata`, pid: bare.child.pid! },
    { name: '(d) audit off', base: `http://127.0.0.1:${noAudit.port}/`, target: `${root}/metadata`, pid: noAudit.child.pid! },
    { name: '(e) + logs at warn', base: `http://127.0.0.1:${quiet.port}/`, target: `${root}/metadata`, pid: quiet.child.pid! },
    { name: '(f) metrics off', base: `http://127.0.0.1:${noMetrics.port}/`, target: `${root}/metadata`, pid: noMetrics.child.pid! },
  ];
  const closed = await closedLoopRounds(targets);
  const byName = new Map<string, Column>();
  for (const t of targets) byName.set(t.name, await measure(t, closed.get(t)!));
  for (const p of [bare, noAudit, quiet, noMetrics]) p.child.kill();
  // The gateway as shipped runs alone: its shipper and the embedded engine's merges go on
  // after a load round, on the same core, and would tax whichever proxy came next.
  const gw = await startGateway(gatewayEnv);
  const shipped: Target = { name: '(c) gateway', base: `http://127.0.0.1:${gw.port}/`, target: `${root}/metadata`, pid: gw.child.pid! };
  const closedShipped = await closedLoopRounds([shipped]);
  byName.set(shipped.name, await measure(shipped, closedShipped.get(shipped)!));
  gw.child.kill();
  const columns = ['(a) direct', '(b) bare Node proxy', '(c) gateway', '(d) audit off', '(e) + logs at warn', '(f) metrics off'].map((n) => byName.get(n)!);
  process.stdout.write('\n' + table(columns));
  const [, b, c, d, e, f] = columns;
  process.stdout.write(
    `\n(c) is the gateway as shipped: audit on (durable spool, embedded ClickHouse), one log line per transaction.\n` +
      `audit off / bare: requests/s ${(d.closed.rps / b.closed.rps).toFixed(2)}x (target >= 0.9), CPU per request ${(d.cpuUsPerReqClosed / b.cpuUsPerReqClosed).toFixed(2)}x (target <= 1.1)\n` +
      `audit off, logs at warn / bare: requests/s ${(e.closed.rps / b.closed.rps).toFixed(2)}x, CPU per request ${(e.cpuUsPerReqClosed / b.cpuUsPerReqClosed).toFixed(2)}x\n` +
      `metrics on / off (audit off, both): requests/s ${(d.closed.rps / f.closed.rps).toFixed(2)}x (target >= 0.95), CPU per request ${(d.cpuUsPerReqClosed / f.cpuUsPerReqClosed).toFixed(2)}x\n` +
      `audit on / audit off: requests/s ${(c.closed.rps / d.closed.rps).toFixed(2)}x (target >= 0.9), p99 ${c.closed.p99Ms.toFixed(2)} vs ${d.closed.p99Ms.toFixed(2)} ms\n` +
      `p99 added over direct at 1,000 req/s: audit off ${(d.fixed.p99Ms - columns[0].fixed.p99Ms).toFixed(3)} ms (target <= 1), audit on ${(c.fixed.p99Ms - columns[0].fixed.p99Ms).toFixed(3)} ms\n` +
      `RSS growth streaming 100 MiB, audit off, warm median (max of 3): ${d.bigWarm.rssGrowthMiB.toFixed(1)} (${d.bigWarmMaxGrowth.toFixed(1)}) MiB (target <= 10); cold: ${d.bigCold.rssGrowthMiB.toFixed(1)} MiB\n`,
  );
  // Audit's cost at capacity: 128 connections, so that the group-commit wait (a few ms per
  // request) does not bound a closed loop's rate and the proxy's core is the limit.
  const CAP = 128;
  const capOff = await startGateway({ ...gatewayEnv, AUDIT_ENABLED: 'false' });
  // The spool alone: ClickHouse refuses connections (port 9), so only the durable spool runs
  // here, as it would with a ClickHouse server on another host.
  const capSpool = await startGateway({ ...gatewayEnv, DATA_DIR: join(dir, 'data-spool'), CLICKHOUSE_URL: 'http://default@127.0.0.1:9/spine_audit' });
  const offT: Target = { name: 'audit off', base: `http://127.0.0.1:${capOff.port}/`, target: `${root}/metadata`, pid: capOff.child.pid! };
  const spoolT: Target = { name: 'spool only', base: `http://127.0.0.1:${capSpool.port}/`, target: `${root}/metadata`, pid: capSpool.child.pid! };
  const cap = await closedLoopRounds([offT, spoolT], CAP);
  capSpool.child.kill();
  const capGw = await startGateway({ ...gatewayEnv, DATA_DIR: join(dir, 'data-cap') });
  const embeddedT: Target = { name: 'embedded', base: `http://127.0.0.1:${capGw.port}/`, target: `${root}/metadata`, pid: capGw.child.pid! };
  const capEmbedded = (await closedLoopRounds([embeddedT], CAP)).get(embeddedT)!;
  const capOffR = cap.get(offT)!;
  const capSpoolR = cap.get(spoolT)!;
  const line = (name: string, r: { closed: LoadResult; cpuUs: number }) =>
    `  ${name.padEnd(44)}${r.closed.rps.toFixed(0).padStart(8)} req/s  ${(r.closed.rps / capOffR.closed.rps).toFixed(2)}x   p99 ${r.closed.p99Ms.toFixed(1).padStart(6)} ms   CPU ${r.cpuUs.toFixed(1)} us/req (${(r.cpuUs / capOffR.cpuUs).toFixed(2)}x)\n`;
  process.stdout.write(
    `\naudit cost at capacity (${CAP} connections, proxy on one core; target >= 0.9x of audit off):\n` +
      line('audit off', capOffR) +
      line('audit on, spool only (ClickHouse elsewhere)', capSpoolR) +
      line('audit on, embedded engine on the same core', capEmbedded),
  );
  for (const child of started) if (child.exitCode === null) child.kill();
  await tlsComparison(gatewayEnv, dir);
  // The gateway on both cores here: the embedded engine's insert and merge threads run beside the event loop.
  const drain = await measureDrain(join(dir, 'drain'), directoryEnv, Number(process.env.BENCH_BACKLOG ?? 300_000), '0-1');
  process.stdout.write(
    `audit backlog of ${drain.records} records (a 10-minute outage at 500 req/s): drained into the embedded engine in ${drain.seconds.toFixed(1)} s ` +
      `(target < 60 s; ${drain.startupSeconds.toFixed(1)} s of it start-up and recovery); the shipper sustains ${Math.round(drain.perSecond)} records/s (target >= 50,000)\n`,
  );
}

/**
 * TLS on both legs against plain HTTP, side by side: mutual TLS to the gateway (client
 * certificate, Spine's ciphers) and TLS to a provider that requires the gateway's client
 * certificate. Keep-alive connections, so this is the steady-state cost of encryption.
 * The Node load generator drives both (wrk cannot present a client certificate).
 */
async function tlsComparison(gatewayEnv: Record<string, string>, dir: string): Promise<void> {
  const ca = TestCa.create('Bench Spine CA');
  const server = ca.issue('localhost', { usage: 'server', dns: ['localhost'] });
  const client = ca.issue('pharmacy.example.nhs.uk', { dns: ['pharmacy.example.nhs.uk'] });
  const gatewayClient = ca.issue('msg.gateway.test');
  const plainProvider = await startServer(LOAD_CORE, join(DIST, 'test/bench/provider.js'), {});
  const tlsProvider = await startServer(LOAD_CORE, join(DIST, 'test/bench/provider.js'), { TLS_CERT: server.cert, TLS_KEY: server.key, TLS_CA: ca.certFile });
  const base = readFileSync(join(ROOT, 'config', 'directory.yaml'), 'utf8');
  const plainDir = join(dir, 'directory-plain.yaml');
  const tlsDir = join(dir, 'directory-tls.yaml');
  writeFileSync(plainDir, base.split('http://127.0.0.1:8081').join(`http://127.0.0.1:${plainProvider.port}`));
  writeFileSync(tlsDir, base.split('http://127.0.0.1:8081').join(`https://127.0.0.1:${tlsProvider.port}`));
  const common = { ...gatewayEnv, AUDIT_ENABLED: 'false' };
  const plain = await startGateway({ ...common, DIRECTORY_FILE: plainDir });
  const tls = await startGateway({
    ...common,
    DIRECTORY_FILE: tlsDir,
    TLS_CERT_FILE: server.cert,
    TLS_KEY_FILE: server.key,
    TLS_CLIENT_CA_FILE: ca.certFile,
    UPSTREAM_CA_FILE: ca.certFile,
    UPSTREAM_CERT_FILE: gatewayClient.cert,
    UPSTREAM_KEY_FILE: gatewayClient.key,
  });
  const path = '/A20047/STU3/1/gpconnect/fhir/metadata';
  const runs: Record<'plain' | 'tls', Array<{ rps: number; p99Ms: number; cpuUs: number }>> = { plain: [], tls: [] };
  const targets = [
    {
      key: 'plain' as const,
      pid: plain.child.pid!,
      url: `http://127.0.0.1:${plain.port}/http://127.0.0.1:${plainProvider.port}${path}`,
      env: {} as Record<string, string>,
    },
    {
      key: 'tls' as const,
      pid: tls.child.pid!,
      url: `https://127.0.0.1:${tls.port}/https://127.0.0.1:${tlsProvider.port}${path}`,
      env: { TLS_CA: ca.certFile, TLS_CERT: client.cert, TLS_KEY: client.key },
    },
  ];
  for (let round = 0; round <= ROUNDS; round++) {
    for (const t of targets) {
      const cpu0 = cpuSeconds(t.pid);
      const seconds = round === 0 ? 1 : SECONDS; // round 0 warms up
      const r = JSON.parse(
        await run(LOAD_CORE, [process.execPath, join(DIST, 'test/bench/load.js')], {
          URL: t.url,
          HEADERS: JSON.stringify(HEADERS),
          MODE: 'closed',
          CONNECTIONS: '32',
          SECONDS: String(seconds),
          ...t.env,
        }),
      ) as LoadResult;
      if (r.errors > 0) throw new Error(`${t.key}: ${r.errors} errors`);
      if (round > 0) runs[t.key].push({ rps: r.rps, p99Ms: r.p99Ms, cpuUs: ((cpuSeconds(t.pid) - cpu0) * 1e6) / r.requests });
    }
  }
  const med = (k: 'plain' | 'tls', f: 'rps' | 'p99Ms' | 'cpuUs') => median(runs[k].map((x) => x[f]));
  process.stdout.write(
    `\nTLS on both legs (mutual TLS in, TLS with the gateway's client certificate out; keep-alive; Node load generator, 32 connections; audit off; median of ${ROUNDS}):\n` +
      `  plain HTTP both legs   ${med('plain', 'rps').toFixed(0).padStart(7)} req/s   p99 ${med('plain', 'p99Ms').toFixed(2)} ms   CPU ${med('plain', 'cpuUs').toFixed(1)} us/req\n` +
      `  TLS both legs          ${med('tls', 'rps').toFixed(0).padStart(7)} req/s   p99 ${med('tls', 'p99Ms').toFixed(2)} ms   CPU ${med('tls', 'cpuUs').toFixed(1)} us/req\n` +
      `  TLS / plain: requests/s ${(med('tls', 'rps') / med('plain', 'rps')).toFixed(2)}x (target >= 0.65), CPU per request ${(med('tls', 'cpuUs') / med('plain', 'cpuUs')).toFixed(2)}x\n`,
  );
  for (const p of [plain, tls, plainProvider, tlsProvider]) p.child.kill();
}

main()
  .catch((err) => {
    process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of started) if (child.exitCode === null) child.kill();
  });

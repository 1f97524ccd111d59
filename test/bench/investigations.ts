import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/test-kit';

/**
 * BENCH_ONLY=export and BENCH_ONLY=summary: the investigations API on ROWS (default
 * 1,000,000) generated audit rows in the embedded engine, the gateway pinned to one core.
 * Export: rows/s, the gateway's CPU time (all threads, the engine's included: rows per
 * CPU-second is what a dedicated core would give, whatever else the machine runs), and
 * its RSS growth (peak during the export over the RSS just before it) for NDJSON and
 * CSV; targets >= 100,000 rows/s and <= 50 MiB. Summary: the
 * latency of a few summaries, median of 5; target <= 1 s.
 */
const ROOT = join(__dirname, '..', '..', '..');
const DIST = join(ROOT, 'dist');

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/** CPU seconds (user + system, every thread: the embedded engine's too) a process has used. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function get(url: string, onData?: (c: Buffer) => void): Promise<{ status: number; body: Buffer; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (onData) onData(c);
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function investigationsBench(which: 'export' | 'summary', core: string): Promise<void> {
  const rows = Number(process.env.BENCH_ROWS ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-inv-'));
  const dataDir = join(dir, 'data');
  const started: ChildProcess[] = [];
  try {
    const t0 = Date.now();
    await new Promise<void>((resolve, reject) => {
      const fill = spawn(process.execPath, [join(DIST, 'test/bench/audit-fill.js'), dataDir, String(rows)], { stdio: ['ignore', 'ignore', 'inherit'] });
      started.push(fill);
      fill.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`audit-fill exited ${code}`))));
    });
    process.stdout.write(`${rows} audit rows generated in the embedded engine in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const adminPort = await freePort();
    const gw = spawn('taskset', ['-c', core, process.execPath, join(DIST, 'src/main.js')], {
      env: {
        ...process.env,
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
        ADMIN_PORT: String(adminPort),
        DIRECTORY_FILE: join(ROOT, 'config', 'directory.yaml'),
        INTERACTIONS_FILE: join(ROOT, 'config', 'gpconnect-interactions.json'),
        AUDIT_EXPORT_MAX_ROWS: String(rows),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    started.push(gw);
    const admin = `http://127.0.0.1:${adminPort}`;
    for (let i = 0; ; i++) {
      const ok = await get(`${admin}/audit/summary?group_by=outcome`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (i > 1200) throw new Error('the gateway did not answer /audit/summary within 60 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const pid = gw.pid!;
    if (which === 'summary') {
      const queries = [
        'group_by=provider_asid,consumer_ods',
        'group_by=provider_asid,consumer_ods&provider_asid=918999198907',
        'group_by=day,outcome',
        'group_by=hour&outcome=denied',
        'group_by=jwt_requesting_organization&from=2026-10-10T00:00:00Z&to=2026-10-20T00:00:00Z',
      ];
      process.stdout.write(`\nGET /audit/summary on ${rows} rows (gateway on core ${core}; median of 5 after one warm-up; target <= 1000 ms):\n`);
      for (const q of queries) {
        const times: number[] = [];
        let groups = 0;
        for (let i = 0; i < 6; i++) {
          const t = process.hrtime.bigint();
          const r = await get(`${admin}/audit/summary?${q}`);
          if (r.status !== 200) throw new Error(`summary ${q}: ${r.status}`);
          if (i > 0) times.push(Number(process.hrtime.bigint() - t) / 1e6);
          groups = JSON.parse(r.body.toString()).groups.length;
        }
        times.sort((a, b) => a - b);
        process.stdout.write(`  ${q.padEnd(90)} ${times[2].toFixed(0).padStart(5)} ms  (${groups} groups)\n`);
      }
      return;
    }
    process.stdout.write(`\nGET /audit/transactions?format=... of ${rows} rows (gateway on core ${core}; targets >= 100000 rows/s, RSS growth <= 50 MiB):\n`);
    for (const format of ['ndjson', 'csv', 'ndjson', 'csv']) {
      const before = rssMiB(pid);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);
      let tail = Buffer.alloc(0);
      const cpu0 = cpuSeconds(pid);
      const t = process.hrtime.bigint();
      const r = await get(`${admin}/audit/transactions?format=${format}`, (c) => {
        tail = Buffer.concat([tail, c]).subarray(-4096);
      });
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      const cpu = cpuSeconds(pid) - cpu0;
      clearInterval(sampler);
      peak = Math.max(peak, rssMiB(pid));
      const last = tail.toString().trimEnd().split('\n').pop()!;
      const manifest = JSON.parse(format === 'csv' ? last.replace(/^# /, '') : last).export;
      if (r.status !== 200 || manifest.rows !== rows) throw new Error(`export ${format}: status ${r.status}, ${manifest.rows} rows`);
      process.stdout.write(
        `  ${format.padEnd(7)} ${manifest.rows} rows, ${(r.bytes / 1048576).toFixed(0)} MiB in ${seconds.toFixed(2)} s: ${(manifest.rows / seconds).toFixed(0).padStart(7)} rows/s; ` +
          `gateway CPU ${cpu.toFixed(2)} s = ${(manifest.rows / cpu).toFixed(0)} rows per CPU-second; RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MiB (growth ${(peak - before).toFixed(1)} MiB)\n`,
      );
    }
  } finally {
    // Stopped by PID, then their 1,000,000-row data folder removed.
    await Promise.all(
      started
        .filter((child) => child.exitCode === null)
        .map((child) => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.kill(), setTimeout(resolve, 5000).unref()))),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callers, selfTimes, type CpuProfile } from '../../bench/profile';
import { CpuMeter, procCpuSeconds, procRssMiB, productProcesses } from '../../bench/procs';

/**
 * The bench's readings, on real processes: the profile summary names the function that
 * burnt the CPU, and the /proc readings find a gateway's store child and charge its CPU
 * to the children, not to the proxy process.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('bench profile summary', () => {
  it('puts a busy function first with its caller, and leaves it out of a window before it ran', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-prof-'));
    try {
      // 100 ms asleep (idle), then 400 ms in benchHotLoop; the script prints the hrtime (µs) between.
      const script =
        'function benchHotLoop(ms){const end=Date.now()+ms;let x=0;while(Date.now()<end)x+=Math.sqrt(x+1);return x}' +
        'function benchCaller(){return benchHotLoop(400)}' +
        'setTimeout(()=>{process.stdout.write(String(process.hrtime.bigint()/1000n));benchCaller()},100)';
      const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '-e', script], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(0);
      const hotFrom = Number(r.stdout);
      const profile = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')) as CpuProfile;
      const all = selfTimes(profile);
      const busiest = all.top.filter((e) => !e.name.startsWith('('))[0];
      expect(busiest.name).toBe('benchHotLoop');
      expect(busiest.busyShare).toBeGreaterThan(0.5);
      expect(all.totalUs).toBeGreaterThan(400_000);
      expect(callers(profile, busiest.name, busiest.location)[0].chain).toMatch(/^benchCaller /);
      const before = selfTimes(profile, -Infinity, hotFrom - 5_000);
      expect(before.top.find((e) => e.name === 'benchHotLoop')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bench /proc readings', () => {
  let parent: ChildProcess | null = null;
  afterEach(() => {
    if (parent?.pid && parent.exitCode === null) parent.kill('SIGKILL');
  });

  it('finds the store child by its command line and charges its CPU to the children', async () => {
    // A stand-in gateway: an idle parent whose child (named like the store's script) burns ~300 ms of CPU.
    const child = `const end=Date.now()+300;let x=0;while(Date.now()<end)x++;setTimeout(()=>{},10000)`;
    const script = `const c=require('node:child_process').spawn(process.execPath,['-e',${JSON.stringify(child)},'store-main.js'],{stdio:'ignore'});setTimeout(()=>{c.kill()},10000);process.on('SIGTERM',()=>{c.kill();process.exit(0)})`;
    parent = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const pid = parent.pid!;
    const meter = new CpuMeter(pid);
    let found = productProcesses(pid);
    for (let i = 0; i < 100 && found.store === null; i++) {
      await sleep(20);
      meter.sample();
      found = productProcesses(pid);
    }
    expect(found.store).not.toBeNull();
    expect(found.children).toContain(found.store);
    expect(procRssMiB(found.store!)).toBeGreaterThan(1);
    await sleep(600);
    const cpu = meter.read();
    expect(cpu.children).toBeGreaterThan(0.15);
    expect(cpu.proxy).toBeLessThan(cpu.children);
    const store = found.store!;
    parent.kill('SIGTERM');
    for (let i = 0; i < 100 && procCpuSeconds(store) !== null; i++) await sleep(20);
    expect(procCpuSeconds(store)).toBeNull(); // a process gone reads as absent, not as an error
  });
});

import { lstatSync, lutimesSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { directoryYaml, okHandler, REPO, send, sspHeaders, startProvider, tempDir, type TestProvider } from '../helpers/test-kit';
import { runGateway, type ChildGateway } from '../helpers/child-gateway';
import { chattr, diskFaultsUnavailable } from '../helpers/disk-faults';

/**
 * One gateway per DATA_DIR: two processes appending to one spool would interleave
 * segments and delete each other's records, and the embedded engine opens its folder
 * once. A second gateway must stop at start-up with one line saying what to do.
 */
let provider: TestProvider;
const running: ChildGateway[] = [];
beforeAll(async () => {
  provider = await startProvider(okHandler('fine'));
});
afterEach(async () => {
  for (const gw of running.splice(0)) {
    gw.kill('SIGKILL');
    await gw.exited;
  }
});
afterAll(async () => {
  await provider.close();
});

async function start(dataDir: string, env: Record<string, string> = {}): Promise<ChildGateway> {
  const gw = await runGateway(directoryYaml({ metadata: provider.root }), { DATA_DIR: dataDir, ...env });
  running.push(gw);
  return gw;
}

async function startFails(dataDir: string, env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  try {
    await start(dataDir, env);
  } catch (err) {
    return err as { code: number; stderr: string };
  }
  throw new Error('expected the second gateway not to start');
}

/** The lock is a symbolic link to nothing: lstat, not exists (which follows it). */
function lockExists(dataDir: string): boolean {
  try {
    lstatSync(join(dataDir, 'gateway.lock'));
    return true;
  } catch {
    return false;
  }
}

const IN_USE = (dir: string, pid: number) =>
  `spine-gateway: cannot start: DATA_DIR ${dir} is in use by another gateway (pid ${pid} on this host): stop that gateway, or give this one another DATA_DIR\n`;

describe('one gateway per DATA_DIR', () => {
  test.each([
    ['AUDIT_FAILURE_MODE=closed, embedded engine', { AUDIT_FAILURE_MODE: 'closed' }],
    ['AUDIT_FAILURE_MODE=open, embedded engine', { AUDIT_FAILURE_MODE: 'open' }],
    // With a server the spool is still under DATA_DIR: two writers would corrupt it silently.
    ['a ClickHouse server (down)', { CLICKHOUSE_URL: 'http://127.0.0.1:1/spine_audit' }],
  ])(
    'a second gateway on the same DATA_DIR stops with one line (%s); the first serves on',
    async (_name, env) => {
      const dataDir = join(tempDir('gw-lock-'), 'data');
      const first = await start(dataDir, env);
      const { code, stderr } = await startFails(dataDir, env);
      expect(code).toBe(1);
      expect(stderr).toBe(IN_USE(dataDir, first.pid));
      const reply = await send(first.url(`${provider.root}/metadata`), { headers: sspHeaders() });
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('fine');
    },
    60_000,
  );

  test('a stopped gateway leaves DATA_DIR free: the next one starts', async () => {
    const dataDir = join(tempDir('gw-lock-'), 'data');
    const first = await start(dataDir);
    first.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(lockExists(dataDir)).toBe(false);
    const second = await start(dataDir);
    expect((await send(second.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
  }, 60_000);

  test('a lock left by a killed gateway is stale: the next one starts and takes it', async () => {
    const dataDir = join(tempDir('gw-lock-'), 'data');
    const first = await start(dataDir);
    first.kill('SIGKILL');
    await first.exited;
    expect(lockExists(dataDir)).toBe(true);
    const second = await start(dataDir);
    expect(readlinkSync(join(dataDir, 'gateway.lock'))).toMatch(new RegExp(`^${second.pid}:`));
    expect((await send(second.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
  }, 60_000);

  test('a lock naming a live process of another program (a reused pid) is stale too', async () => {
    const dataDir = join(tempDir('gw-lock-'), 'data');
    mkdirSync(dataDir, { recursive: true });
    // This test runner is alive, but it did not take the lock at the start time recorded.
    symlinkSync(`${process.pid}:1:@${hostname()}`, join(dataDir, 'gateway.lock'));
    const gw = await start(dataDir);
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
  }, 60_000);

  test('a lock from another host is refused while its holder touches it, and stale a minute after', async () => {
    const dataDir = join(tempDir('gw-lock-'), 'data');
    mkdirSync(dataDir, { recursive: true });
    const lockFile = join(dataDir, 'gateway.lock');
    symlinkSync('4242::@other-host.example', lockFile);
    const { code, stderr } = await startFails(dataDir);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `spine-gateway: cannot start: DATA_DIR ${dataDir} is in use by another gateway (pid 4242 on host other-host.example): stop that gateway, or give this one another DATA_DIR\n`,
    );
    const old = new Date(Date.now() - 120_000);
    lutimesSync(lockFile, old, old);
    const gw = await start(dataDir);
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
  }, 60_000);

  test('a lock that is not one (a plain file, a link to elsewhere) is stale', async () => {
    const dataDir = join(tempDir('gw-lock-'), 'data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'gateway.lock'), '1234');
    const first = await start(dataDir);
    first.kill('SIGTERM');
    await first.exited;
    symlinkSync('/etc/hostname', join(dataDir, 'gateway.lock'));
    const gw = await start(dataDir);
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
  }, 60_000);

  test('the dead-letter replay (embedded engine) says plainly that a gateway holds DATA_DIR', async () => {
    const dataDir = join(tempDir('gw-lock-'), 'data');
    const gw = await start(dataDir);
    mkdirSync(join(dataDir, 'dead-letter'), { recursive: true });
    writeFileSync(join(dataDir, 'dead-letter', '00000001.seg'), '');
    const run = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'replay-dead-letters.js')], {
      cwd: REPO,
      env: { PATH: process.env.PATH, DATA_DIR: dataDir },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      `replay-dead-letters: DATA_DIR ${dataDir} is in use by a gateway (pid ${gw.pid}): stop it first, since the embedded engine opens DATA_DIR/clickhouse in one process at a time\n`,
    );
  }, 60_000);

  const noFaults = diskFaultsUnavailable();
  (noFaults === null ? test : test.skip)(
    'a DATA_DIR that cannot hold the lock (chattr +i) does not stop start-up: one warning, traffic audited as usual',
    async () => {
      const dataDir = join(tempDir('gw-lock-'), 'data');
      const first = await start(dataDir); // makes spool/ and clickhouse/ under DATA_DIR
      first.kill('SIGTERM');
      await first.exited;
      chattr('+i', dataDir);
      try {
        const gw = await start(dataDir);
        expect(gw.stdout()).toMatch(/cannot create gateway\.lock \(EPERM\); starting without it/);
        expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
        gw.kill('SIGTERM');
        expect(await gw.exited).toEqual({ code: 0, signal: null });
      } finally {
        chattr('-i', dataDir);
      }
    },
    60_000,
  );
});
if (diskFaultsUnavailable() !== null) process.stdout.write(`data-dir-lock: the chattr case skips: ${diskFaultsUnavailable()}\n`);

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { directoryYaml, startProvider, tempDir, waitFor, type TestProvider } from '../helpers/test-kit';
import { logLines, runGateway, type ChildGateway } from '../helpers/child-gateway';

/**
 * DATA_DIR/store.pid names the store process a killed gateway left, for the next gateway on
 * that DATA_DIR to end. The pid in it may since have been given to another process: with two
 * gateways on one host (two DATA_DIRs), to the other gateway's store. Only a store of this
 * DATA_DIR is ever killed.
 */
let provider: TestProvider;
let gw: ChildGateway | null = null;
let decoy: ChildProcess | null = null;

beforeAll(async () => {
  provider = await startProvider((_req, res) => void res.end('{}'));
});
afterAll(async () => {
  if (gw !== null && gw.child.exitCode === null) {
    gw.kill('SIGTERM');
    await gw.exited;
  }
  if (decoy !== null && decoy.exitCode === null && decoy.signalCode === null) decoy.kill('SIGKILL');
  await provider.close();
});

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** A process that looks like another gateway's store (its command line: the store's entry and that gateway's DATA_DIR). */
function otherStore(dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', join('dist', 'src', 'store-main.js'), dataDir], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve(child));
    child.once('error', reject);
  });
}

test("a pid in store.pid that is now another DATA_DIR's store is left running", async () => {
  const dataDir = join(tempDir('gw-reap-'), 'data');
  mkdirSync(dataDir, { recursive: true });
  decoy = await otherStore(join(tempDir('gw-other-'), 'data'));
  // As a gateway killed earlier on this DATA_DIR left it, its store's pid since reused by the other gateway's store.
  writeFileSync(join(dataDir, 'store.pid'), `${decoy.pid}\n`);
  gw = await runGateway(directoryYaml({ metadata: provider.root }), { DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  await waitFor(() => logLines(gw!, /^audit store process started$/).length === 1, 10_000, 'the store started');
  expect(logLines(gw, /left by the previous gateway/)).toEqual([]);
  expect([decoy.exitCode, decoy.signalCode]).toEqual([null, null]);
}, 30_000);

test('a store of this DATA_DIR left by a killed gateway is still ended before a new one starts', async () => {
  const dataDir = join(tempDir('gw-reap-own-'), 'data');
  const first = await runGateway(directoryYaml({ metadata: provider.root }), { DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  await waitFor(() => logLines(first, /^audit store process started$/).length === 1, 10_000, 'the first store started');
  const storePid = Number(logLines(first, /^audit store process started$/)[0].store_pid);
  // Stopped, so that it cannot exit by itself when its gateway goes (as one busy in the engine may not, at once).
  process.kill(storePid, 'SIGSTOP');
  first.kill('SIGKILL');
  await first.exited;
  if (gw !== null && gw.child.exitCode === null) {
    gw.kill('SIGTERM');
    await gw.exited;
  }
  gw = await runGateway(directoryYaml({ metadata: provider.root }), { DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  expect(logLines(gw, /left by the previous gateway/).map((l) => l.store_pid)).toEqual([storePid]);
  // Gone, or a zombie (no command line) waiting for whoever reaps orphans here.
  expect(cmdline(storePid)).toBe('');
}, 30_000);

import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { directoryYaml, startProvider, waitFor, type TestProvider } from '../helpers/test-kit';
import { logLines, runGateway, tracedRequests, type ChildGateway } from '../helpers/child-gateway';

/**
 * DATA_DIR holds the audit spool, the engine's files, the seal key and the store's Unix
 * socket. Another local user must reach none of it: a DATA_DIR the gateway creates is 0700
 * (whatever the umask), and the socket is 0600. (A DATA_DIR that exists is left as it is.)
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

test('a DATA_DIR the gateway creates is 0700 under a umask of 022; its store socket 0600', async () => {
  const g = (gw = await runGateway(directoryYaml({ metadata: provider.root }), { LOG_LEVEL: 'info' }));
  await waitFor(() => logLines(g, /^audit store process started$/).length === 1, 10_000, 'the store started');
  await tracedRequests(g, `${provider.root}/metadata`, 2);
  const dataDir = join(g.dir, 'data');
  await waitFor(
    () => {
      try {
        return lstatSync(join(dataDir, 'store.sock')).isSocket();
      } catch {
        return false;
      }
    },
    15_000,
    'the store socket',
  );
  expect((lstatSync(dataDir).mode & 0o777).toString(8)).toBe('700');
  expect((lstatSync(join(dataDir, 'store.sock')).mode & 0o777).toString(8)).toBe('600');
}, 40_000);

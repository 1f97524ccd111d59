import { writeFileSync } from 'node:fs';
import { directoryYaml, eventually, okHandler, waitFor, send, sspHeaders, startProvider, type TestProvider } from '../helpers/test-kit';
import { runGateway } from '../helpers/child-gateway';

let provider: TestProvider;
let slow: TestProvider;
/** The slow provider's held responses: each request waits here until the test releases it. */
const held: Array<() => void> = [];
beforeAll(async () => {
  provider = await startProvider(okHandler('fast'));
  slow = await startProvider((_req, res) => held.push(() => res.end('slow but complete')));
});
afterAll(async () => {
  await provider.close();
  await slow.close();
});

async function startError(
  env: Record<string, string>,
  directory = directoryYaml({ metadata: 'http://127.0.0.1:1/A1' }),
): Promise<{ code: number; stderr: string }> {
  try {
    const gw = await runGateway(directory, env);
    gw.kill('SIGKILL');
    throw new Error('expected start-up to fail');
  } catch (err) {
    return err as { code: number; stderr: string };
  }
}

describe('start-up', () => {
  test.each([
    [{ PORT: 'eighty' }, /^spine-gateway: cannot start: config: PORT: .*\(got "eighty"\)\n$/],
    [{ UPSTREAM_TIMEOUT_MS: '-5' }, /^spine-gateway: cannot start: config: UPSTREAM_TIMEOUT_MS: /],
    [{ DIRECTORY_FILE: '/nonexistent/directory.yaml' }, /^spine-gateway: cannot start: directory \/nonexistent\/directory\.yaml: cannot read: ENOENT\n$/],
    [{ UPSTREAM_CA_FILE: '/nonexistent/ca.pem' }, /^spine-gateway: cannot start: UPSTREAM_CA_FILE: cannot read \/nonexistent\/ca\.pem \(ENOENT\)\n$/],
    [{ ADMIN_TOKENS_FILE: '/nonexistent/tokens.yaml' }, /^spine-gateway: cannot start: ADMIN_TOKENS_FILE \/nonexistent\/tokens\.yaml: ENOENT/],
    [{ TLS_CLIENT_CA_FILE: '/nonexistent/ca.pem' }, /^spine-gateway: cannot start: config: TLS_CLIENT_CA_FILE and TLS_CRL_FILE need TLS on PORT/],
  ])('%j stops start-up with exit 1 and one line', async (env, line) => {
    const { code, stderr } = await startError(env);
    expect(code).toBe(1);
    expect(stderr).toMatch(line);
  });

  test('a broken directory stops start-up with one line naming the place', async () => {
    const { code, stderr } = await startError({}, directoryYaml({ metadata: 'https://GP.example/A1' }));
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^spine-gateway: cannot start: directory .*providers\.0\.endpoints\.0\.url: must be written canonically as https:\/\/gp\.example\/A1.*\n$/,
    );
    expect(stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});

describe('signals', () => {
  test('SIGTERM: stops accepting, finishes the in-flight transaction, exits 0', async () => {
    const gw = await runGateway(directoryYaml({ metadata: slow.root }));
    const inFlight = send(gw.url(`${slow.root}/metadata`), { headers: sspHeaders() });
    await eventually(() => held.length === 1, 5000, 'the request to reach the provider');
    gw.kill('SIGTERM');
    // The gateway has begun to shut down while the transaction is still in flight; only then does the provider answer.
    await eventually(() => gw.stdout().includes('"msg":"shutting down"'), 5000, 'the gateway to say it is shutting down');
    held.shift()!();
    const reply = await inFlight;
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('slow but complete');
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    await expect(send(gw.url(`${slow.root}/metadata`), { headers: sspHeaders() })).rejects.toThrow(/ECONNREFUSED/);
    expect(gw.stdout()).toMatch(/"msg":"gateway stopped"/);
  });

  test('SIGHUP reloads the directory (file watching off)', async () => {
    const other = await startProvider(okHandler('other'));
    const gw = await runGateway(directoryYaml({ metadata: provider.root }), { DIRECTORY_WATCH: 'false' });
    try {
      expect((await send(gw.url(`${other.root}/metadata`), { headers: sspHeaders() })).status).toBe(400);
      writeFileSync(gw.directoryFile, directoryYaml({ metadata: other.root }));
      // Proving that nothing happens needs a window: twice the watcher's 150 ms debounce, by
      // which a watching gateway would have reloaded (the only deliberate sleep in this file).
      await new Promise((r) => setTimeout(r, 300));
      expect((await send(gw.url(`${other.root}/metadata`), { headers: sspHeaders() })).status).toBe(400); // not watched
      expect(gw.stdout()).not.toContain('"trigger":"file change"');
      gw.kill('SIGHUP');
      await waitFor(async () => (await send(gw.url(`${other.root}/metadata`), { headers: sspHeaders() })).status === 200, 5000, 'the SIGHUP reload');
      expect(gw.stdout()).toMatch(/"trigger":"SIGHUP".*"msg":"directory loaded"/);
      expect(gw.stdout()).not.toContain('"trigger":"file change"');
    } finally {
      gw.kill('SIGTERM');
      await gw.exited;
      await other.close();
    }
  });
});

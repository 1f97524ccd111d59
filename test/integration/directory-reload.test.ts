import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  directoryYaml,
  eventually,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

let first: TestProvider;
let second: TestProvider;
let gw: RunningGateway;

beforeAll(async () => {
  first = await startProvider(okHandler('first'));
  second = await startProvider(okHandler('second'));
  gw = await startGateway(directoryYaml({ metadata: first.root }));
});
afterAll(async () => {
  await gw.stop();
  await first.close();
  await second.close();
});

async function metric(name: string): Promise<number> {
  const text = (await send(`http://127.0.0.1:${gw.adminPort}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('directory reload', () => {
  test('a changed file takes effect without a restart', async () => {
    expect((await send(gw.url(`${first.root}/metadata`), { headers: sspHeaders() })).body.toString()).toBe('first');
    // Write-then-rename, as config managers do.
    const tmp = join(gw.dir, 'directory.yaml.new');
    writeFileSync(tmp, directoryYaml({ metadata: second.root }));
    renameSync(tmp, gw.directoryFile);
    await eventually(
      () => gw.gateway.directory.current!.providers.get('918999198993')!.endpointFor.values().next().value!.url === second.root,
      3000,
      'the reload',
    );
    expect((await send(gw.url(`${second.root}/metadata`), { headers: sspHeaders() })).body.toString()).toBe('second');
    const stale = await send(gw.url(`${first.root}/metadata`), { headers: sspHeaders() });
    expect(stale.status).toBe(400);
  });

  test('a broken file keeps the old directory in force, logs why and counts the failure', async () => {
    const failuresBefore = await metric('spine_gateway_directory_reloads_total{result="failure"}');
    const before = gw.gateway.directory.current;
    writeFileSync(gw.directoryFile, directoryYaml({ metadata: 'https://u:p@evil.example/x' }));
    const reloaded = gw.gateway.directory.reload('test');
    expect(reloaded).toBe(false);
    expect(gw.gateway.directory.current).toBe(before);
    const failuresAfter = await metric('spine_gateway_directory_reloads_total{result="failure"}');
    expect(failuresAfter).toBeGreaterThan(failuresBefore);
    expect((await send(gw.url(`${second.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    gw.gateway.log.flush();
    await eventually(() => readFileSync(gw.logFile, 'utf8').includes('must not contain userinfo'), 3000, 'the log line');
    expect(readFileSync(gw.logFile, 'utf8')).toMatch(
      /directory reload failed, previous directory stays in force: directory .*providers\.0\.endpoints\.0\.url: must not contain userinfo/,
    );
  });
});

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runCliInProcess, type CliRun } from '../../helpers/cli-kit';
import { DEVICE_FIXTURE, ENDPOINT_FIXTURE, sdsTestBundles } from '../../helpers/sds-bundles';
import { REPO, tempDir } from '../../helpers/test-kit';

/**
 * `spine-gateway directory import|check` in this process (main(), as the bin calls it), where
 * coverage sees them; test/system/directory-cli.test.ts runs the built bin as a person would.
 */
function run(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return runCliInProcess(args, env);
}

const dir = tempDir('directory-command-');
const { devices, endpoints } = sdsTestBundles('https://gp.example.nhs.uk');
writeFileSync(join(dir, 'devices.json'), devices);
writeFileSync(join(dir, 'endpoints.json'), endpoints);
writeFileSync(join(dir, 'ndsa.csv'), 'agreement,consumer_ods,provider_ods\nNDSA,FA565,*\n');
const IMPORT = [
  'directory',
  'import',
  '--sds-devices',
  join(dir, 'devices.json'),
  '--sds-endpoints',
  join(dir, 'endpoints.json'),
  '--agreements',
  join(dir, 'ndsa.csv'),
];

describe('spine-gateway directory (in process)', () => {
  test('import writes YAML the check accepts', async () => {
    const r = await run([...IMPORT, '--environment', 'live']);
    expect(r.status).toBe(0);
    expect(parseYaml(r.stdout).consumers[0].environment).toBe('live');
    const file = join(dir, 'directory.yaml');
    writeFileSync(file, r.stdout);
    const checked = await run(['directory', 'check', file]);
    expect(checked.status).toBe(0);
    expect(checked.stdout).toMatch(/the gateway loads it: 1 consumer, 1 provider, 4 endpoints; 0 warnings/);
  });

  test('problems: exit 1, nothing on stdout', async () => {
    const r = await run(['directory', 'import', '--sds-devices', DEVICE_FIXTURE, '--sds-endpoints', ENDPOINT_FIXTURE]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error: '))).toHaveLength(2);
  });

  test('INTERACTIONS_FILE decides which IDs are known; an unreadable one is bad usage', async () => {
    const catalogue = join(dir, 'interactions.json');
    // A catalogue of one interaction (entries are complete: the file is validated as the gateway loads it).
    const all = JSON.parse(readFileSync(join(REPO, 'config', 'gpconnect-interactions.json'), 'utf8')) as { id: string }[];
    writeFileSync(catalogue, JSON.stringify(all.filter((e) => e.id === 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1')));
    const r = await run(IMPORT, { INTERACTIONS_FILE: catalogue });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: .* is not in INTERACTIONS_FILE/);
    const flag = await run([...IMPORT, '--interactions-file', join(REPO, 'config', 'gpconnect-interactions.json')], { INTERACTIONS_FILE: catalogue });
    expect(flag.stderr).not.toMatch(/warning:/);
    const bad = await run([...IMPORT, '--interactions-file', join(dir, 'nope.json')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/INTERACTIONS_FILE .*nope.json/);
  });
});

import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEVICE_FIXTURE, ENDPOINT_FIXTURE, SDS_CONSUMER, SDS_PROVIDER, sdsTestBundles } from '../helpers/sds-bundles';
import { okHandler, REPO, send, sspHeaders, startGateway, startProvider, tempDir, type RunningGateway, type TestProvider } from '../helpers/test-kit';

/**
 * `spine-gateway directory import|check` as an operator runs them: the built CLI
 * (dist/src/cli/spine-gateway.js) in a child process with nothing but PATH, files on disk,
 * then a real gateway started with the imported directory forwarding to a real provider.
 */
const CLI = join(REPO, 'dist', 'src', 'cli', 'spine-gateway.js');
const METADATA = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], cwd = REPO): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`spine-gateway ${args.join(' ')} did not finish: ${stderr}`));
    }, 30_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

let dir: string;
let provider: TestProvider;
let gateway: RunningGateway | null = null;

beforeAll(async () => {
  dir = tempDir('directory-cli-');
  provider = await startProvider(okHandler());
});

afterAll(async () => {
  await gateway?.stop();
  await provider.close();
});

function files(base: string, agreements = 'agreement,consumer_ods,provider_ods\nNDSA,FA565,*\n'): string[] {
  const { devices, endpoints } = sdsTestBundles(base);
  writeFileSync(join(dir, 'devices.json'), devices);
  writeFileSync(join(dir, 'endpoints.json'), endpoints);
  writeFileSync(join(dir, 'ndsa.csv'), agreements);
  return ['--sds-devices', join(dir, 'devices.json'), '--sds-endpoints', join(dir, 'endpoints.json'), '--agreements', join(dir, 'ndsa.csv')];
}

describe('spine-gateway directory import', () => {
  test('imports the SDS bundles (addresses at a local provider); check passes; a gateway started with it forwards a request', async () => {
    const imported = await cli(['directory', 'import', ...files(`http://127.0.0.1:${provider.port}`)]);
    expect(imported.stderr).toBe('spine-gateway: directory written: 1 consumer, 1 provider, 1 agreement entry; 0 warnings\n');
    expect(imported.status).toBe(0);
    const file = join(dir, 'directory.yaml');
    writeFileSync(file, imported.stdout);

    const checked = await cli(['directory', 'check', file]);
    expect(checked).toEqual({ status: 0, stdout: `${file}: the gateway loads it: 1 consumer, 1 provider, 4 endpoints; 0 warnings\n`, stderr: '' });

    gateway = await startGateway(imported.stdout);
    const target = `http://127.0.0.1:${provider.port}/ABC123/STU3/1/gpconnect/fhir/metadata`;
    const reply = await send(gateway.url(target), {
      headers: sspHeaders({ 'Ssp-From': SDS_CONSUMER.asid, 'Ssp-To': SDS_PROVIDER.asid, 'Ssp-InteractionID': METADATA }),
    });
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('{"resourceType":"CapabilityStatement"}');
    expect(provider.connections).toBe(1);
    expect(provider.requests.map((r) => r.url)).toEqual(['/ABC123/STU3/1/gpconnect/fhir/metadata']);

    // The agreement came from the CSV: a consumer organisation it does not list is refused.
    const other = await send(gateway.url(target), { headers: sspHeaders({ 'Ssp-From': '200000000359', 'Ssp-To': '918999198993' }) });
    expect(other.status).toBe(403);
    expect(provider.connections).toBe(1);
  });

  test('the SDS fixtures as copied: every problem on stderr, one line each with its place; nothing on stdout; exit 1', async () => {
    writeFileSync(join(dir, 'bad.csv'), 'agreement,consumer_ods,provider_ods\nNDSA,FA-565,*\n');
    const r = await cli(['directory', 'import', '--sds-devices', DEVICE_FIXTURE, '--sds-endpoints', ENDPOINT_FIXTURE, '--agreements', join(dir, 'bad.csv')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([
      `error: ${DEVICE_FIXTURE}: entry 0 (http://127.0.0.1:61191/device/f0f0e921-92ca-4a88-a550-2dbb36f703af): extension[1] (interaction): service:interaction is not an interaction URN (urn:nhs:names:services:...)`,
      `error: ${ENDPOINT_FIXTURE}: entry 0 (http://internal-dev.apis.ptl.api.platform.nhs.uk/Endpoint/CEA3DAEC-4A25-4A4F-89F9-34AB84ED4DDC): identifier (nhsMhsPartyKey): no AS record (Device) has party key ABC123-822104; add its Device search result (ODS ABC123)`,
      `error: ${join(dir, 'bad.csv')}: line 2: consumer_ods: FA-565 is not an ODS code (letters and digits) or *`,
      'spine-gateway: 3 errors, 0 warnings: no directory written',
    ]);
  });

  test('a file that cannot be read is one of the problems, the others are still listed', async () => {
    const missing = join(dir, 'missing.json');
    const r = await cli(['directory', 'import', '--sds-devices', missing, '--sds-endpoints', ENDPOINT_FIXTURE, '--agreements', missing]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([
      `error: ${missing}: cannot read: ENOENT`,
      `error: ${missing}: cannot read: ENOENT`,
      expect.stringMatching(/^error: .*sds-fhir-endpoint-bundle.json: entry 0 .*: no AS record \(Device\) has party key ABC123-822104/),
      'spine-gateway: 3 errors, 0 warnings: no directory written',
    ]);
  });

  test('bad usage: exit 2', async () => {
    const r = await cli(['directory', 'import', '--sds-devices', DEVICE_FIXTURE]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/directory import needs --sds-devices FILE and --sds-endpoints FILE/);
    expect((await cli(['directory', 'import', ...files('http://test'), '--environment', 'prod'])).status).toBe(2);
  });

  test('--environment and --no-certificate-fqdns reach the output', async () => {
    const r = await cli(['directory', 'import', ...files('http://test'), '--environment', 'test', '--no-certificate-fqdns']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('    environment: test\n');
  });
});

describe('spine-gateway directory check', () => {
  test('the shipped example directory passes', async () => {
    const r = await cli(['directory', 'check', 'config/directory.yaml']);
    expect(r).toEqual({ status: 0, stdout: 'config/directory.yaml: the gateway loads it: 1 consumer, 1 provider, 2 endpoints; 0 warnings\n', stderr: '' });
  });

  test('a broken directory: every problem one line, exit 1', async () => {
    const file = join(dir, 'broken.yaml');
    const good = readFileSync(join(REPO, 'config', 'directory.yaml'), 'utf8');
    writeFileSync(
      file,
      good
        .replace("asid: '200000000359'", 'asid: 200000000359')
        .replace('http://127.0.0.1:8081/A20047/STU3/1/gpconnect/fhir', 'http://127.0.0.1:8081/A20047/STU3/1/gpconnect/./fhir')
        .replace('urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1', 'urn:nhs:names:services:gpconnect:fhir:rest:read:patient-7')
        .replace(
          'structured/fhir\n        interactions:\n',
          'structured/fhir\n        interactions:\n          - urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1\n',
        ),
    );
    const r = await cli(['directory', 'check', file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([
      `error: directory ${file}: consumers.0.asid: must be a quoted string of digits`,
      `error: directory ${file}: providers.0.endpoints.0.url: must be written canonically as http://127.0.0.1:8081/A20047/STU3/1/gpconnect/fhir (lower-case host, no default port, no dot-segments or escapes)`,
      `spine-gateway: 2 problems: the gateway would not load ${file}`,
    ]);

    // An entry that fails the schema is not compared with the others: with the two schema
    // problems fixed, the provider's duplicate interaction and the unknown ID show.
    writeFileSync(file, readFileSync(file, 'utf8').replace('asid: 200000000359', "asid: '200000000359'").replace('gpconnect/./fhir', 'gpconnect/fhir'));
    const again = await cli(['directory', 'check', file, '--strict']);
    expect(again.status).toBe(1);
    expect(lines(again.stderr)).toEqual([
      `error: directory ${file}: providers.0.endpoints.1: provider 918999198993 registers urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1 at two endpoints (http://127.0.0.1:8081/A20047/STU3/1/gpconnect/fhir, http://127.0.0.1:8081/A20047/STU3/1/gpconnect/structured/fhir)`,
      `warning: directory ${file}: consumer 200000000359: urn:nhs:names:services:gpconnect:fhir:rest:read:patient-7 is not a known GP Connect interaction ID`,
      `spine-gateway: 1 problem: the gateway would not load ${file}`,
    ]);
  });

  test('--strict makes warnings fail; a missing file is a problem', async () => {
    const file = join(dir, 'warn.yaml');
    writeFileSync(file, readFileSync(join(REPO, 'config', 'directory.yaml'), 'utf8').replace(/\nagreements:[\s\S]*$/, '\n'));
    const loose = await cli(['directory', 'check', file]);
    expect(loose.status).toBe(0);
    expect(loose.stderr).toBe(`warning: directory ${file}: no agreements key: the data-sharing agreement (FoT) check is off\n`);
    expect((await cli(['directory', 'check', file, '--strict'])).status).toBe(1);
    const missing = await cli(['directory', 'check', join(dir, 'nope.yaml')]);
    expect(missing.status).toBe(1);
    expect(lines(missing.stderr)[0]).toBe(`error: directory ${join(dir, 'nope.yaml')}: cannot read: ENOENT`);
  });
});

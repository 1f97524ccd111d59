import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { importSds, loadDirectory, loadInteractionCatalogue, type SdsImportInput } from '../../../src/directory';
import { routeThroughDirectory } from '../../../src/gateway';
import type { Route } from '../../../src/route';
import {
  bundle,
  CATALOGUE,
  cpaId,
  DEVICE_FIXTURE,
  deviceEntry,
  ENDPOINT_FIXTURE,
  endpointEntry,
  SDS_CONSUMER,
  SDS_ERROR_FIXTURE,
  SDS_PROVIDER,
  sdsTestBundles,
} from '../../helpers/sds-bundles';
import { REPO, tempDir } from '../../helpers/test-kit';

const known = loadInteractionCatalogue(join(REPO, 'config', 'gpconnect-interactions.json'));
const METADATA = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
const SLOTS = 'urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1';
const DOCS = 'urn:nhs:names:services:gpconnect:documents:fhir:rest:search:documentreference-1';
const ROOT = 'https://gp.example.nhs.uk/ABC123/STU3/1/gpconnect/fhir';
const HEADER = 'agreement,consumer_ods,provider_ods\n';

type Json = Record<string, unknown>;

function run(devices: Json[] | string, endpoints: Json[] | string, extra: Partial<SdsImportInput> = {}) {
  return importSds({
    devices: [{ name: 'devices.json', text: typeof devices === 'string' ? devices : bundle('Device', devices) }],
    endpoints: [{ name: 'endpoints.json', text: typeof endpoints === 'string' ? endpoints : bundle('Endpoint', endpoints) }],
    agreements: { name: 'ndsa.csv', text: `${HEADER}NDSA,*,ABC123\n` },
    knownInteractions: known,
    ...extra,
  });
}

const provider = (interactions = [METADATA]) => deviceEntry({ ...SDS_PROVIDER, interactions });
const consumer = (interactions = [METADATA]) => deviceEntry({ ...SDS_CONSUMER, interactions });
const mhs = (interaction = METADATA, address = ROOT, more: Parameters<typeof endpointEntry>[0] = {}) =>
  endpointEntry({ ...SDS_PROVIDER, interaction, address, cpaId: cpaId(), ...more });

/** The one error (or warning) of a run, with its place. */
function only(lines: readonly string[]): string {
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('importing the SDS fixtures', () => {
  test('the fixtures as copied: both inconsistencies are reported with their place, and nothing is written', () => {
    const result = importSds({
      devices: [{ name: 'devices.json', text: readFileSync(DEVICE_FIXTURE, 'utf8') }],
      endpoints: [{ name: 'endpoints.json', text: readFileSync(ENDPOINT_FIXTURE, 'utf8') }],
      knownInteractions: known,
    });
    expect(result.yaml).toBeNull();
    expect(result.errors).toEqual([
      'devices.json: entry 0 (http://127.0.0.1:61191/device/f0f0e921-92ca-4a88-a550-2dbb36f703af): extension[1] (interaction): service:interaction is not an interaction URN (urn:nhs:names:services:...)',
      'endpoints.json: entry 0 (http://internal-dev.apis.ptl.api.platform.nhs.uk/Endpoint/CEA3DAEC-4A25-4A4F-89F9-34AB84ED4DDC): identifier (nhsMhsPartyKey): no AS record (Device) has party key ABC123-822104; add its Device search result (ODS ABC123)',
    ]);
  });

  test('the fixtures made consistent: a directory the gateway loads, that routes every interaction of the bundle', () => {
    const { devices, endpoints, rootOf } = sdsTestBundles('http://test');
    const result = run(devices, endpoints);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    const file = join(tempDir(), 'directory.yaml');
    writeFileSync(file, result.yaml!);
    const { index, warnings } = loadDirectory(file, known);
    expect(warnings).toEqual([]);
    expect([...index.consumers.keys()]).toEqual([SDS_CONSUMER.asid]);
    expect([...index.providers.keys()]).toEqual([SDS_PROVIDER.asid]);
    expect(index.endpointCount).toBe(4);
    expect(CATALOGUE.length).toBeGreaterThan(20);
    for (const { id } of CATALOGUE) {
      const root = rootOf.get(id)!;
      const route = routeThroughDirectory(index, SDS_CONSUMER.asid, SDS_PROVIDER.asid, id, `${root}/metadata`) as Route;
      expect({ id, url: route.endpoint?.url, upstreamPath: route.upstreamPath }).toEqual({ id, url: root, upstreamPath: `${new URL(root).pathname}/metadata` });
    }
  });

  test('the YAML names its sources: files, AS and MHS records (party key, CPA id, supplier)', () => {
    const { devices, endpoints } = sdsTestBundles('http://test');
    const yaml = run(devices, endpoints).yaml!;
    expect(yaml).toMatch(
      /^# Imported from SDS by spine-gateway directory import: --sds-devices devices.json --sds-endpoints endpoints.json --agreements ndsa.csv\n/,
    );
    expect(yaml).toContain('# AS 200000000359, party key FA565-000001, supplier YGM24: devices.json: entry 1 (http://127.0.0.1:61191/device/');
    expect(yaml).toContain('# AS 928942012545, party key ABC123-822104: devices.json: entry 0');
    expect(yaml).toMatch(/# MHS CPA id 4ec1563fbe8e49bb[0-9a-f]{4}(, 4ec1563fbe8e49bb[0-9a-f]{4})*: endpoints.json: entry \d+ \(http:\/\/internal-dev/);
    expect(yaml).toContain('asid: "928942012545"');
  });
});

describe('how SDS records become directory entries', () => {
  test('a provider: AS + MHS with a shared party key, interactions on both; endpoints grouped by address, trailing slash dropped', () => {
    const result = run(
      [provider([METADATA, SLOTS, DOCS]), consumer()],
      [mhs(METADATA, `${ROOT}/`), mhs(SLOTS, ROOT), mhs(DOCS, 'https://gp.example.nhs.uk/ABC123/STU3/1/gpconnect/documents/fhir')],
    );
    expect(result.errors).toEqual([]);
    expect(result.directory!.providers).toEqual([
      {
        asid: SDS_PROVIDER.asid,
        ods: 'ABC123',
        endpoints: [
          { url: 'https://gp.example.nhs.uk/ABC123/STU3/1/gpconnect/documents/fhir', interactions: [DOCS] },
          { url: ROOT, interactions: [METADATA, SLOTS] },
        ],
      },
    ]);
    expect(result.directory!.consumers).toEqual([{ asid: SDS_CONSUMER.asid, ods: 'FA565', interactions: [METADATA] }]);
    expect(result.directory!.agreements).toEqual([{ id: 'NDSA', consumers: '*', providers: ['ABC123'] }]);
  });

  test('a system in both roles (same ASID and party key): provided interactions are on its MHS records, consumed ones on its AS record only', () => {
    const result = run([provider([METADATA, SLOTS])], [mhs(METADATA)]);
    expect(result.errors).toEqual([]);
    expect(result.directory!.providers.map((p) => [p.asid, p.endpoints.flatMap((e) => e.interactions)])).toEqual([[SDS_PROVIDER.asid, [METADATA]]]);
    expect(result.directory!.consumers.map((c) => [c.asid, c.interactions])).toEqual([[SDS_PROVIDER.asid, [SLOTS]]]);
  });

  test("a consumer's MHS FQDNs become certificate_fqdns (the SSP's sender FQDN check); --no-certificate-fqdns leaves them out", () => {
    const psis = 'urn:nhs:names:services:psis:REPC_IN150016UK05';
    const devices = [deviceEntry({ ...SDS_CONSUMER, interactions: [METADATA] }), provider()];
    const endpoints = [mhs(), endpointEntry({ ...SDS_CONSUMER, interaction: psis, fqdn: 'Consumer.Example.NHS.uk', cpaId: cpaId() })];
    const withFqdns = run(devices, endpoints);
    expect(withFqdns.errors).toEqual([]);
    expect(withFqdns.directory!.consumers).toEqual([
      { asid: SDS_CONSUMER.asid, ods: 'FA565', interactions: [METADATA], certificate_fqdns: ['consumer.example.nhs.uk'] },
    ]);
    // The consumer's own MHS record is for another service: not an endpoint, said once.
    expect(only(withFqdns.warnings)).toMatch(
      new RegExp(`^endpoints.json: entry 1 \\(.*\\): extension\\[1\\] \\(interaction\\): ${psis} is not on the AS record of party key FA565-000001`),
    );
    const without = run(devices, endpoints, { certificateFqdns: false });
    expect(without.directory!.consumers[0]).not.toHaveProperty('certificate_fqdns');
  });

  test('--environment stamps every consumer', () => {
    const result = run([provider(), consumer()], [mhs()], { environment: 'test' });
    expect(result.directory!.consumers.map((c) => c.environment)).toEqual(['test']);
    expect(result.yaml).toContain('environment: test');
  });

  test('the same AS or MHS record from two searches is imported once, AS interactions merged', () => {
    const endpoint = mhs(METADATA);
    const result = run([provider([METADATA]), consumer([METADATA]), consumer([SLOTS])], [endpoint, endpoint]);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.directory!.consumers).toEqual([{ asid: SDS_CONSUMER.asid, ods: 'FA565', interactions: [METADATA, SLOTS] }]);
    expect(result.directory!.providers[0].endpoints).toEqual([{ url: ROOT, interactions: [METADATA] }]);
  });

  test('an endpoint that is not active is left out, with a warning, and does not make its provider a consumer of that interaction', () => {
    const result = run([provider([METADATA, SLOTS])], [mhs(METADATA), mhs(SLOTS, 'https://GP.example.nhs.uk/old', { status: 'off' })]);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([expect.stringMatching(/^endpoints.json: entry 1 \(.*\): status: off, not active: no endpoint imported$/)]);
    expect(result.directory!.providers[0].endpoints).toEqual([{ url: ROOT, interactions: [METADATA] }]);
    expect(result.directory!.consumers).toEqual([]);
  });

  test('an interaction INTERACTIONS_FILE does not know is imported, with one warning naming its first place', () => {
    const future = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-9';
    const result = run([provider([future]), consumer([future])], [mhs(future)]);
    expect(result.errors).toEqual([]);
    expect(only(result.warnings)).toMatch(
      new RegExp(`^devices.json: entry 0 \\(.*\\): extension\\[1\\] \\(interaction\\): ${future} is not in INTERACTIONS_FILE`),
    );
    expect(result.directory!.providers[0].endpoints[0].interactions).toEqual([future]);
  });

  test('agreement rows become entries that cover exactly the pairs listed', () => {
    const text = `${HEADER}NDSA,FA565,*\nNDSA,B1,A1\nNDSA,B1,A2\nNDSA,B2,A2\nNDSA,B2,A1\nNDSA,B1,A1\nLOCAL,B3,A1\n`;
    const result = run([provider(), consumer()], [mhs()], { agreements: { name: 'ndsa.csv', text } });
    expect(result.errors).toEqual([]);
    expect(result.directory!.agreements).toEqual([
      { id: 'LOCAL', consumers: ['B3'], providers: ['A1'] },
      { id: 'NDSA', consumers: ['B1', 'B2'], providers: ['A1', 'A2'] },
      { id: 'NDSA', consumers: ['FA565'], providers: '*' },
    ]);
    const file = join(tempDir(), 'directory.yaml');
    writeFileSync(file, result.yaml!);
    const { agreements } = loadDirectory(file, known).index;
    const pairs = ['FA565', 'B1', 'B2', 'B3', 'C9'].flatMap((c) => ['A1', 'A2', 'ABC123'].filter((p) => agreements!.covers(c, p)).map((p) => `${c}>${p}`));
    expect(pairs).toEqual(['FA565>A1', 'FA565>A2', 'FA565>ABC123', 'B1>A1', 'B1>A2', 'B2>A1', 'B2>A2', 'B3>A1']);
  });

  test('agreements: a BOM, CRLF, quoted fields and blank lines are read; a consumer no agreement covers is warned about', () => {
    const text = `\uFEFF"agreement","consumer_ods","provider_ods"\r\n\r\n"NDSA","B1","*"\r\n`;
    const result = run([provider(), consumer()], [mhs()], { agreements: { name: 'ndsa.csv', text } });
    expect(result.errors).toEqual([]);
    expect(result.directory!.agreements).toEqual([{ id: 'NDSA', consumers: ['B1'], providers: '*' }]);
    expect(only(result.warnings)).toBe(
      'consumer 200000000359 (FA565): no agreement in ndsa.csv covers its organisation; the gateway will refuse it (FOT_CHECK_FAILED)',
    );
  });

  test('an agreement for everyone with everyone, and two providers of one organisation, are warned about', () => {
    const second = deviceEntry({ ...SDS_PROVIDER, asid: '928942012546', partyKey: 'ABC123-822105', interactions: [SLOTS] });
    const result = run([provider(), second, consumer()], [mhs(), mhs(SLOTS, ROOT, { partyKey: 'ABC123-822105' })], {
      agreements: { name: 'ndsa.csv', text: `${HEADER}NDSA,*,*\n` },
    });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([
      'providers 928942012545 and 928942012546 are both of organisation ABC123; SDS registers one provider system per organisation',
      'ndsa.csv: an agreement covers every consumer with every provider (*,*): the agreement check lets everything through',
    ]);
  });

  test('without --agreements the directory has no agreements key, and a warning says the check is off', () => {
    const result = run([provider(), consumer()], [mhs()], { agreements: undefined });
    expect(result.directory).not.toHaveProperty('agreements');
    expect(parseYaml(result.yaml!)).not.toHaveProperty('agreements');
    expect(only(result.warnings)).toMatch(/^no --agreements: .*agreements \(FoT\)$/);
  });
});

describe('every problem, one line each with its place; nothing written', () => {
  const E0 = 'endpoints.json: entry 0 (http://internal-dev.apis.ptl.api.platform.nhs.uk/Endpoint/CEA3DAEC-4A25-4A4F-89F9-34AB84ED4DDC)';
  const D0 = 'devices.json: entry 0 (http://127.0.0.1:61191/device/f0f0e921-92ca-4a88-a550-2dbb36f703af)';

  test.each([
    ['a file that is not JSON', '{"resourceType":', [mhs()], /^devices.json: not JSON: /],
    [
      'an SDS error answer instead of a search result',
      readFileSync(SDS_ERROR_FIXTURE, 'utf8'),
      [mhs()],
      /^devices.json: resourceType: an OperationOutcome \(the SDS API's error answer\)/,
    ],
    ['a resource of the wrong kind', [mhs()], [], new RegExp(`^devices.json: entry 0 \\(.*\\): resourceType: expected Device, found Endpoint$`)],
    [
      'a search result with more pages',
      JSON.stringify({ ...JSON.parse(bundle('Device', [provider()])), link: [{ relation: 'next', url: 'http://x/Device?page=2' }] }),
      [mhs()],
      /^devices.json: link: the search result has a next page; fetch every page/,
    ],
    [
      'a Device without an ASID',
      [deviceEntry({ ...SDS_PROVIDER, asid: '', interactions: [METADATA] })],
      [],
      new RegExp(`^${esc(D0)}: identifier \\(nhsSpineASID\\): empty \\(an ASID \\(digits only\\) expected\\)$`),
    ],
    [
      'a Device whose ASID is not digits',
      [deviceEntry({ ...SDS_PROVIDER, asid: '92894201254X', interactions: [METADATA] })],
      [],
      /: identifier \(nhsSpineASID\): 92894201254X is not an ASID \(digits only\)$/,
    ],
    [
      'a Device whose owner is not an ODS code',
      [deviceEntry({ ...SDS_PROVIDER, ods: 'ABC-123', interactions: [METADATA] })],
      [],
      /: owner.identifier.value: ABC-123 is not an ODS code/,
    ],
    [
      'an interaction that is not a URN',
      [deviceEntry({ ...SDS_PROVIDER, interactions: ['read-metadata'] })],
      [],
      /: extension\[1\] \(interaction\): read-metadata is not an interaction URN/,
    ],
    [
      'an MHS record without an AS record (no ASID to route to)',
      [consumer()],
      [mhs()],
      new RegExp(`^${esc(E0)}: identifier \\(nhsMhsPartyKey\\): no AS record \\(Device\\) has party key ABC123-822104`),
    ],
    [
      'a non-canonical address, with the canonical form',
      [provider()],
      [mhs(METADATA, 'https://GP.Example.nhs.uk:443/ABC123/STU3/1/gpconnect/fhir')],
      new RegExp(`^${esc(E0)}: address: https://GP.Example.nhs.uk:443/ABC123/STU3/1/gpconnect/fhir: must be written canonically as ${esc(ROOT)} `),
    ],
    [
      'an address with a dot-segment',
      [provider()],
      [mhs(METADATA, 'https://gp.example.nhs.uk/ABC123/x/../STU3')],
      /: address: .*: must be written canonically as https:\/\/gp.example.nhs.uk\/ABC123\/STU3 /,
    ],
    ['an address with a query', [provider()], [mhs(METADATA, `${ROOT}?a=1`)], /: address: .*: must not contain a query or fragment$/],
    ['an address that is not http(s)', [provider()], [mhs(METADATA, 'ftp://gp.example.nhs.uk/ABC123')], /: address: .*: must be http or https$/],
    ['an MHS record without an address', [provider()], [mhs(METADATA, '')], /: address: missing \(the service root\)$/],
    [
      'an MHS record of another organisation than its AS record',
      [provider()],
      [mhs(METADATA, ROOT, { ods: 'XYZ999' })],
      /: managingOrganization.identifier.value: XYZ999, but the AS record of ASID 928942012545 \(devices.json: entry 0 .*\) is owned by ABC123$/,
    ],
  ])('%s', (_name, devices, endpoints, message) => {
    const result = run(devices as Json[] | string, endpoints as Json[]);
    expect(result.yaml).toBeNull();
    expect(result.directory).toBeNull();
    expect(only(result.errors)).toMatch(message);
  });

  test('two endpoints for one provider and interaction: an error naming both records and addresses', () => {
    const result = run([provider()], [mhs(METADATA, ROOT), mhs(METADATA, 'https://other.example.nhs.uk/ABC123/STU3/1/gpconnect/fhir')]);
    expect(result.yaml).toBeNull();
    expect(only(result.errors)).toMatch(
      new RegExp(
        `^endpoints.json: entry 1 \\(.*\\): address: provider 928942012545 would receive ${METADATA} at two endpoints, ${esc(ROOT)} \\(endpoints.json: entry 0 .*\\) and https://other.example.nhs.uk/ABC123/STU3/1/gpconnect/fhir; SDS holds one MHS record per ASID and interaction$`,
      ),
    );
  });

  test('two MHS records for one provider and interaction at the same address: imported once, with a warning', () => {
    const result = run([provider()], [mhs(METADATA, ROOT), mhs(METADATA, ROOT)]);
    expect(result.errors).toEqual([]);
    expect(only(result.warnings)).toMatch(
      /^endpoints.json: entry 1 .*: a second MHS record for provider 928942012545 .* same address as endpoints.json: entry 0 .*: imported once$/,
    );
  });

  test('one ASID with two party keys or owners: an error at the second entry', () => {
    const result = run([provider(), deviceEntry({ ...SDS_PROVIDER, partyKey: 'ABC123-999999', ods: 'ABC124', interactions: [METADATA] })], []);
    expect(result.errors).toEqual([
      expect.stringMatching(
        /^devices.json: entry 1 .*: identifier \(nhsMhsPartyKey\): ASID 928942012545 is also at devices.json: entry 0 .* with ABC123-822104, here ABC123-999999/,
      ),
      expect.stringMatching(
        /^devices.json: entry 1 .*: owner.identifier.value: ASID 928942012545 is also at devices.json: entry 0 .* with ABC123, here ABC124/,
      ),
    ]);
  });

  test('one CPA id for two different MHS records: an error', () => {
    const id = cpaId();
    const result = run([provider([METADATA, SLOTS])], [mhs(METADATA, ROOT, { cpaId: id }), mhs(SLOTS, ROOT, { cpaId: id })]);
    expect(only(result.errors)).toMatch(
      /^endpoints.json: entry 1 .*: identifier \(nhsMhsCPAId\): 4ec1563fbe8e49bb[0-9a-f]{4} is also at endpoints.json: entry 0 .* with other content$/,
    );
  });

  test('two AS records with the party key of an MHS record both listing its interaction: which one provides it is ambiguous', () => {
    const result = run([provider(), deviceEntry({ ...SDS_PROVIDER, asid: '928942012546', interactions: [METADATA] })], [mhs()]);
    expect(only(result.errors)).toMatch(
      /: extension\[1\] \(interaction\): .* is on 2 AS records with party key ABC123-822104 \(ASIDs 928942012545, 928942012546\); which one provides it is ambiguous$/,
    );
  });

  test('agreements register problems: header, field count, ODS codes, an open quote, each with its line', () => {
    const bad = run([provider(), consumer()], [mhs()], {
      agreements: { name: 'ndsa.csv', text: 'agreement,consumer,provider\nNDSA,FA565\nNDSA,FA-565,*\n,FA565,*\nNDSA,"FA565,*\n' },
    });
    expect(bad.yaml).toBeNull();
    expect(bad.errors).toEqual([
      'ndsa.csv: line 1: expected the header line agreement,consumer_ods,provider_ods, found agreement,consumer,provider',
      'ndsa.csv: line 2: 2 fields, expected 3 (agreement,consumer_ods,provider_ods)',
      'ndsa.csv: line 3: consumer_ods: FA-565 is not an ODS code (letters and digits) or *',
      "ndsa.csv: line 4: agreement: empty (the agreement's name, e.g. NDSA)",
      'ndsa.csv: line 5: a quote is not closed',
    ]);
    expect(only(run([provider()], [mhs()], { agreements: { name: 'ndsa.csv', text: '' } }).errors)).toMatch(/^ndsa.csv: empty: expected the header line/);
  });

  test('several problems in several files are all reported, in file order, each on one line', () => {
    const result = run(
      [provider([METADATA, SLOTS]), deviceEntry({ ...SDS_CONSUMER, asid: 'x1', interactions: ['bad'] })],
      [mhs(METADATA, 'https://GP.example.nhs.uk/A'), mhs(SLOTS, ROOT, { partyKey: 'NOPE-1' }), mhs(SLOTS, ROOT, { ods: 'XYZ999' })],
      { agreements: { name: 'ndsa.csv', text: `${HEADER}NDSA,*\n` } },
    );
    expect(result.yaml).toBeNull();
    expect(result.errors.map((e) => e.replace(/ \(http[^)]*\)/, ''))).toEqual([
      'devices.json: entry 1: identifier (nhsSpineASID): x1 is not an ASID (digits only)',
      'devices.json: entry 1: extension[1] (interaction): bad is not an interaction URN (urn:nhs:names:services:...)',
      expect.stringMatching(
        /^endpoints.json: entry 0: address: https:\/\/GP.example.nhs.uk\/A: must be written canonically as https:\/\/gp.example.nhs.uk\/A /,
      ),
      expect.stringMatching(/^endpoints.json: entry 1: identifier \(nhsMhsPartyKey\): no AS record \(Device\) has party key NOPE-1/),
      expect.stringMatching(/^endpoints.json: entry 2: managingOrganization.identifier.value: XYZ999/),
      'ndsa.csv: line 2: 2 fields, expected 3 (agreement,consumer_ods,provider_ods)',
    ]);
  });

  test('values from the files cannot break a line: control characters in a fullUrl or an ASID are shown as ?', () => {
    const entry = deviceEntry({ ...SDS_PROVIDER, interactions: [METADATA], asid: '1\n2', fullUrl: 'http://x/\u001b[31mDevice\r\nerror: forged' });
    const result = run([entry], []);
    const line = only(result.errors);
    expect([...line].filter((c) => c < ' ')).toEqual([]);
    expect(line).toBe('devices.json: entry 0 (http://x/?[31mDevice??error: forged): identifier (nhsSpineASID): 1?2 is not an ASID (digits only)');
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

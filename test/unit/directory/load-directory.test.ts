import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryError, loadDirectory, loadInteractionCatalogue } from '../../../src/directory';
import { REPO, directoryYaml, tempDir } from '../../helpers/test-kit';

const catalogue = loadInteractionCatalogue(join(REPO, 'config', 'gpconnect-interactions.json'));
const ROOT = 'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir';

function load(yaml: string) {
  const file = join(tempDir(), 'directory.yaml');
  writeFileSync(file, yaml);
  return loadDirectory(file, catalogue);
}

function errorOf(yaml: string): string {
  try {
    load(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(DirectoryError);
    return (err as Error).message;
  }
  throw new Error('expected the directory to be refused');
}

describe('loadDirectory', () => {
  test('the shipped example directory loads without warnings', () => {
    const { index, warnings } = loadDirectory(join(REPO, 'config', 'directory.yaml'), catalogue);
    expect(warnings).toEqual([]);
    expect(index.consumers.size).toBe(1);
    expect(index.providers.get('918999198993')!.endpointFor.size).toBe(6);
  });

  test('compiles endpoints once: origin, connect host and port', () => {
    const { index } = load(directoryYaml({ metadata: ROOT }));
    const endpoint = index.providers.get('918999198993')!.endpointFor.get('urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1')!;
    expect(endpoint).toMatchObject({
      url: ROOT,
      origin: 'https://gp.example.nhs.uk',
      hostname: 'gp.example.nhs.uk',
      port: 443,
      hostHeader: 'gp.example.nhs.uk',
    });
  });

  test.each([
    ['an unquoted ASID', directoryYaml({ metadata: ROOT }).replace('"200000000359"', '200000000359'), /consumers\.0\.asid: must be a quoted string of digits/],
    ['a non-digit ASID', directoryYaml({ metadata: ROOT }).replace('"918999198993"', '"91899919899X"'), /providers\.0\.asid: must be digits only/],
    [
      'an interaction that is not a URN',
      directoryYaml({ metadata: ROOT }).replace(
        'interactions: [urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1, ',
        'interactions: [read-metadata, ',
      ),
      /consumers\.0\.interactions\.0: must be an interaction URN/,
    ],
    ['userinfo in an endpoint', directoryYaml({ metadata: 'https://u:p@gp.example.nhs.uk/A1' }), /url: must not contain userinfo/],
    ['a relative endpoint', directoryYaml({ metadata: '/A1/STU3' }), /url: must be an absolute URL/],
    ['an ftp endpoint', directoryYaml({ metadata: 'ftp://gp.example.nhs.uk/A1' }), /url: must be http or https/],
    ['a query in an endpoint', directoryYaml({ metadata: 'https://gp.example.nhs.uk/A1?x=1' }), /url: must not contain a query or fragment/],
    ['an upper-case host', directoryYaml({ metadata: 'https://GP.example.nhs.uk/A1' }), /must be written canonically as https:\/\/gp\.example\.nhs\.uk\/A1/],
    ['an explicit default port', directoryYaml({ metadata: 'https://gp.example.nhs.uk:443/A1' }), /must be written canonically/],
    ['a dot-segment', directoryYaml({ metadata: 'https://gp.example.nhs.uk/A1/../B2' }), /must be written canonically/],
    // Endpoints a consumer's target could never match (its syntax and path-form checks refuse them): they would load and never route.
    ['an empty path segment', directoryYaml({ metadata: 'https://gp.example.nhs.uk//A1/fhir' }), /url: is not a URL a consumer's request could match/],
    ['an encoded slash', directoryYaml({ metadata: 'https://gp.example.nhs.uk/A1%2F..%2FB2' }), /url: is not a URL a consumer's request could match/],
    ['path parameters', directoryYaml({ metadata: 'https://gp.example.nhs.uk/A1;x=1/fhir' }), /url: is not a URL a consumer's request could match/],
    ['a broken escape', directoryYaml({ metadata: 'https://gp.example.nhs.uk/A1%zz' }), /url: /],
    ['port 0', directoryYaml({ metadata: 'https://gp.example.nhs.uk:0/A1' }), /url: must not name port 0/],
    ['a misspelt key', directoryYaml({ metadata: ROOT }).replace('agreements:', 'agreement:'), /Unrecognized key.*agreement/],
    ['a duplicate consumer', directoryYaml({ metadata: ROOT }).replace('"200000000360"', '"200000000359"'), /consumer ASID 200000000359 is listed twice/],
    [
      'one interaction at two endpoints',
      `consumers: []\nproviders:\n  - asid: "2"\n    ods: P2\n    endpoints:\n      - url: ${ROOT}\n        interactions: [${'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1'}]\n      - url: https://gp.example.nhs.uk/A20047/x\n        interactions: [${'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1'}]\n`,
      /registers urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1 at two endpoints/,
    ],
    ['not YAML', 'consumers: [\n', /not|cannot read|Flow sequence|Unexpected/],
  ])('refuses %s with the place and why', (_name, yaml, message) => {
    expect(errorOf(yaml)).toMatch(message);
  });

  test('unknown GP Connect interaction IDs are warned about, once each', () => {
    const yaml = directoryYaml({ metadata: ROOT }).split('gpconnect:fhir:rest:read:metadata-1').join('gpconnect:fhir:rest:read:metadata-9');
    const { warnings } = load(yaml);
    expect(warnings).toEqual([
      expect.stringMatching(/consumer 200000000359: urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-9 is not a known GP Connect interaction ID/),
    ]);
  });

  test('agreements: lists, "*" on either side, and off without the key', () => {
    const withWildcards = load(
      directoryYaml({ metadata: ROOT }).replace(
        /agreements:[\s\S]*$/,
        'agreements:\n  - id: A\n    consumers: "*"\n    providers: ["P1"]\n  - id: B\n    consumers: ["C1"]\n    providers: "*"\n',
      ),
    ).index.agreements!;
    expect(withWildcards.covers('ANY', 'P1')).toBe(true);
    expect(withWildcards.covers('C1', 'ANYTHING')).toBe(true);
    expect(withWildcards.covers('C2', 'P2')).toBe(false);
    expect(load(directoryYaml({ metadata: ROOT }).replace(/agreements:[\s\S]*$/, '')).index.agreements).toBeNull();
  });
});

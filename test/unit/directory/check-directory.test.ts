import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryError, loadDirectory, loadInteractionCatalogue } from '../../../src/directory';
import { CONSUMER_ASID, METADATA, REPO, STRUCTURED, directoryYaml, tempDir } from '../../helpers/test-kit';

const catalogue = loadInteractionCatalogue(join(REPO, 'config', 'gpconnect-interactions.json'));
const ROOT = 'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir';

function fileWith(yaml: string): string {
  const file = join(tempDir(), 'directory.yaml');
  writeFileSync(file, yaml);
  return file;
}

function refusal(yaml: string): DirectoryError {
  try {
    loadDirectory(fileWith(yaml), catalogue);
  } catch (err) {
    expect(err).toBeInstanceOf(DirectoryError);
    return err as DirectoryError;
  }
  throw new Error('expected the directory to be refused');
}

/** Three schema problems in different entries, a duplicate consumer and an interaction at two endpoints. */
const FIVE_PROBLEMS = `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${METADATA}]
  - asid: 200000000360
    ods: "FA566"
    interactions: [${METADATA}]
  - asid: "${CONSUMER_ASID}"
    ods: "FA567"
    interactions: [${METADATA}]
providers:
  - asid: "918999198993"
    ods: "A20047"
    endpoints:
      - url: ${ROOT}
        interactions: [${METADATA}]
      - url: https://gp.example.nhs.uk/A20047/other
        interactions: [${METADATA}]
  - asid: "918999198994"
    ods: "A_1"
    endpoints:
      - url: https://GP.example.nhs.uk/A1
        interactions: [${STRUCTURED}]
`;

describe('loadDirectory reports every problem, not only the first', () => {
  test('schema problems in several entries and clashes between valid entries are all listed, each with its place', () => {
    const err = refusal(FIVE_PROBLEMS);
    const lines = err.problems.map((p) => p.replace(/^directory \S+: /, ''));
    expect(lines).toEqual([
      'consumers.1.asid: must be a quoted string of digits',
      'providers.1.ods: must be an ODS code (letters and digits)',
      'providers.1.endpoints.0.url: must be written canonically as https://gp.example.nhs.uk/A1 (lower-case host, no default port, no dot-segments or escapes)',
      `consumers.2: consumer ASID ${CONSUMER_ASID} is listed twice (also at consumers.0)`,
      `providers.0.endpoints.1: provider 918999198993 registers ${METADATA} at two endpoints (${ROOT}, https://gp.example.nhs.uk/A20047/other)`,
    ]);
    for (const p of err.problems) expect(p).not.toContain('\n');
  });

  test("the gateway's start-up message stays one line: the first problem and how many more", () => {
    const err = refusal(FIVE_PROBLEMS);
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(
      /^directory \S+directory\.yaml: consumers\.1\.asid: must be a quoted string of digits \(and 4 more problems: spine-gateway directory check \S+ lists them all\)$/,
    );
  });

  test('one problem: the message is that problem alone', () => {
    const err = refusal(directoryYaml({ metadata: ROOT }).replace('"200000000360"', '"200000000359"'));
    expect(err.problems).toHaveLength(1);
    expect(err.message).toMatch(/consumers\.1: consumer ASID 200000000359 is listed twice \(also at consumers\.0\)$/);
  });

  test('an interaction listed twice at one endpoint is named as such', () => {
    const err = refusal(
      directoryYaml({ metadata: ROOT }).replace(`        interactions: [${METADATA}]\n`, `        interactions: [${METADATA}, ${METADATA}]\n`),
    );
    expect(err.problems).toEqual([expect.stringMatching(new RegExp(`providers\\.0\\.endpoints\\.0: lists ${METADATA} twice$`))]);
  });

  test('YAML syntax errors name the line', () => {
    const err = refusal('consumers:\n  - asid: "1"\n    ods: [\n');
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/cannot read: line \d+, column \d+: /);
  });

  test('a directory that loads still loads, with its warnings', () => {
    const { index, warnings } = loadDirectory(fileWith(directoryYaml({ metadata: ROOT, structured: `${ROOT}/structured` })), catalogue);
    expect(index.providers.get('918999198993')!.endpointFor.size).toBe(2);
    expect(warnings).toEqual([]);
  });
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGateway } from '../../../src/app';
import { InteractionCheck } from '../../../src/check';
import { loadSettings } from '../../../src/config';
import {
  DirectoryError,
  compileInteractionCatalogue,
  loadInteractionCatalogue,
  queryNamesOf,
  type Endpoint,
  type InteractionCatalogue,
} from '../../../src/directory';
import { FIXTURES, REPO, directoryYaml, tempDir } from '../../helpers/test-kit';

const READ_PATIENT = 'urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1';
const good = {
  id: READ_PATIENT,
  method: 'GET',
  path: '/Patient/{id}',
  pathRegex: '^/Patient/[A-Za-z0-9\\-\\.]{1,64}$',
  requestedScope: 'patient/*.read',
  operation: 'Read a patient',
};

function problemsOf(list: unknown): string[] {
  const compiled = compileInteractionCatalogue(list);
  if (!Array.isArray(compiled)) throw new Error('expected problems, got a catalogue');
  return compiled;
}

function catalogueOf(list: unknown): InteractionCatalogue {
  const compiled = compileInteractionCatalogue(list);
  if (Array.isArray(compiled)) throw new Error(`expected a catalogue: ${compiled.join('; ')}`);
  return compiled;
}

function endpoint(url: string): Endpoint {
  const u = new URL(url);
  const origin = `${u.protocol}//${u.host}`;
  return { url, origin, protocol: u.protocol as 'http:', hostname: u.hostname, port: 443, hostHeader: u.host };
}

describe('INTERACTIONS_FILE compile errors: every problem, named by index and id', () => {
  test('not an array', () => {
    expect(problemsOf({ id: 'x' })).toEqual([expect.stringContaining('expected a JSON array of interactions')]);
  });

  test('a bad regex is named with its entry, and is not the only problem reported', () => {
    const problems = problemsOf([
      good,
      { ...good, id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:location-1', pathRegex: '^/Location/([A-Z]$' },
      { ...good, id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:organization-1', method: 'FETCH' },
    ]);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^\[1\] urn:nhs:names:services:gpconnect:fhir:rest:read:location-1: pathRegex: not a valid regular expression \(.+\)$/);
    expect(problems[1]).toMatch(
      /^\[2\] urn:nhs:names:services:gpconnect:fhir:rest:read:organization-1: method: must be one of GET, HEAD, POST, PUT, DELETE, PATCH$/,
    );
  });

  test('missing, empty, misspelt and mistyped fields; an entry that is not an object; an id that is not a URN', () => {
    const { pathRegex: _dropped, ...noRegex } = good;
    void _dropped;
    const problems = problemsOf([
      noRegex,
      { ...good, requestedScope: '' },
      { ...good, pathregex: 'x' },
      'read:patient',
      { ...good, id: 'patient-read' },
      { ...good, path: 'Patient/{id}' },
    ]);
    expect(problems).toEqual([
      `[0] ${READ_PATIENT}: pathRegex: is missing`,
      `[1] ${READ_PATIENT}: requestedScope: must not be empty`,
      expect.stringMatching(/^\[2\] urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1: .*pathregex/),
      '[3]: must be an object { id, method, path, pathRegex, requestedScope, operation }',
      '[4] patient-read: id: must be an interaction URN (urn:nhs:names:services:...)',
      `[5] ${READ_PATIENT}: path: must be a path template below the endpoint, starting with "/"`,
    ]);
  });

  test('an id listed twice', () => {
    expect(problemsOf([good, good])).toEqual([`[1] ${READ_PATIENT}: id is listed twice (first at [0])`]);
  });

  test('loadInteractionCatalogue throws one DirectoryError naming the file and every problem', () => {
    const file = join(tempDir(), 'interactions.json');
    writeFileSync(
      file,
      JSON.stringify([
        { ...good, pathRegex: '(' },
        { ...good, id: 'x' },
      ]),
    );
    let error: unknown;
    try {
      loadInteractionCatalogue(file);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DirectoryError);
    const message = (error as Error).message;
    expect(message).toContain(`INTERACTIONS_FILE ${file}: 2 problems:\n  [0] ${READ_PATIENT}: pathRegex: not a valid regular expression`);
    expect(message).toContain('\n  [1] x: id: must be an interaction URN');
  });

  test('a file that is not JSON', () => {
    const file = join(tempDir(), 'interactions.json');
    writeFileSync(file, '[{ "id": ');
    expect(() => loadInteractionCatalogue(file)).toThrow(new RegExp(`^INTERACTIONS_FILE ${file}: `));
  });

  test('the gateway does not start with a bad INTERACTIONS_FILE', async () => {
    const dir = tempDir();
    const file = join(dir, 'interactions.json');
    writeFileSync(file, JSON.stringify([{ ...good, pathRegex: '^/Patient/[$' }]));
    writeFileSync(join(dir, 'directory.yaml'), directoryYaml({ metadata: 'http://127.0.0.1:1/fhir' }));
    const settings = loadSettings({
      PORT: '0',
      ADMIN_PORT: '0',
      DIRECTORY_FILE: join(dir, 'directory.yaml'),
      INTERACTIONS_FILE: file,
      DATA_DIR: join(dir, 'data'),
      AUDIT_ENABLED: 'false',
    });
    await expect(buildGateway(settings)).rejects.toThrow(
      /INTERACTIONS_FILE .*: a problem:\n {2}\[0\] .*read:patient-1: pathRegex: not a valid regular expression/,
    );
  });

  test('the shipped catalogue and the fixtures compile, with the same interactions', () => {
    const shipped = loadInteractionCatalogue(join(REPO, 'config', 'gpconnect-interactions.json'));
    const fixtures = loadInteractionCatalogue(join(FIXTURES, 'interactions.json'));
    expect([...shipped]).toEqual([...fixtures]);
    expect(shipped.size).toBe(25);
  });
});

describe('query names from the template (names only, never values)', () => {
  test.each([
    ['/Patient?identifier={system}|{value}', ['identifier']],
    ['/Slot?start=ge{date}&end=le{date}&status=free&_include=Slot:schedule{&...}', ['start', 'end', 'status', '_include']],
    ['/Patient/{id}/Appointment?start=ge{date}&start=le{date}', ['start']],
    ['/Patient/{id}/DocumentReference?{params}', []],
    ['/Patient/{id}', []],
    ['/metadata', []],
  ])('%s', (template, names) => {
    expect(queryNamesOf(template)).toEqual(names);
  });
});

describe('findings', () => {
  const check = new InteractionCheck(loadInteractionCatalogue(join(REPO, 'config', 'gpconnect-interactions.json')));
  const fhir = endpoint('https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir');
  const bare = endpoint('https://gp.example.nhs.uk');
  const SLOT = 'urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1';

  test('the path is read below the endpoint, whether the endpoint has a path or not', () => {
    expect(check.findings(READ_PATIENT, 'GET', { endpoint: fhir, upstreamPath: '/A20047/STU3/1/gpconnect/fhir/Patient/1' })).toEqual([]);
    expect(check.findings(READ_PATIENT, 'GET', { endpoint: bare, upstreamPath: '/Patient/1' })).toEqual([]);
    expect(check.findings(READ_PATIENT, 'GET', { endpoint: fhir, upstreamPath: '/A20047/STU3/1/gpconnect/fhir' })).toEqual(['INTERACTION_PATH']);
    expect(check.findings(READ_PATIENT, 'GET', { endpoint: fhir, upstreamPath: '/A20047/STU3/1/gpconnect/fhir?x=1' })).toEqual(['INTERACTION_PATH']);
    expect(check.findings(READ_PATIENT, 'GET', { endpoint: bare, upstreamPath: '/A20047/STU3/1/gpconnect/fhir/Patient/1' })).toEqual(['INTERACTION_PATH']);
  });

  test('the issue 12 attack gives every finding at once, in a fixed order', () => {
    expect(check.findings(SLOT, 'POST', { endpoint: fhir, upstreamPath: '/A20047/STU3/1/gpconnect/fhir/Appointment' })).toEqual([
      'INTERACTION_METHOD',
      'INTERACTION_PATH',
      'INTERACTION_QUERY',
    ]);
  });

  test('a fitting request allocates no list: the same empty list every time', () => {
    const route = { endpoint: fhir, upstreamPath: '/A20047/STU3/1/gpconnect/fhir/Patient/1' };
    expect(check.findings(READ_PATIENT, 'GET', route)).toBe(check.findings(READ_PATIENT, 'HEAD', route));
  });

  test('an interaction not in the catalogue: one finding, no expected form, no scope', () => {
    const other = 'urn:nhs:names:services:gpconnect:fhir:rest:read:healthcareservice-1';
    expect(check.findings(other, 'GET', { endpoint: fhir, upstreamPath: '/A20047/STU3/1/gpconnect/fhir/x' })).toEqual(['INTERACTION_NOT_IN_CATALOGUE']);
    expect(check.expected(other)).toBeNull();
    expect(check.requiredScope(other)).toBeNull();
  });

  test('expected and requiredScope give the file as written', () => {
    expect(check.expected(SLOT)).toEqual({ method: 'GET', path: '/Slot?start=ge{date}&end=le{date}&status=free&_include=Slot:schedule{&...}' });
    expect(check.requiredScope('urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1')).toBe('patient/*.read (plus conf/N or conf/R)');
  });

  test('a pathRegex is matched against the whole path, anchored or not', () => {
    const loose = new InteractionCheck(
      catalogueOf([
        { ...good, pathRegex: '/Patient' },
        { ...good, id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:location-1', pathRegex: '^/Location/1$|^/Location/2$' },
      ]),
    );
    const at = (upstreamPath: string) => ({ endpoint: bare, upstreamPath });
    expect(loose.findings(READ_PATIENT, 'GET', at('/Patient'))).toEqual([]);
    expect(loose.findings(READ_PATIENT, 'GET', at('/x/Patient/y'))).toEqual(['INTERACTION_PATH']);
    expect(loose.findings('urn:nhs:names:services:gpconnect:fhir:rest:read:location-1', 'GET', at('/Location/2'))).toEqual([]);
    expect(loose.findings('urn:nhs:names:services:gpconnect:fhir:rest:read:location-1', 'GET', at('/Location/3'))).toEqual(['INTERACTION_PATH']);
  });
});

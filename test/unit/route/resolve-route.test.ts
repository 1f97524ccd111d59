import { DirectoryIndex } from '../../../src/directory';
import { Refusal } from '../../../src/errors';
import { resolveRoute, type Route } from '../../../src/route';

const METADATA = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
const index = new DirectoryIndex({
  consumers: [{ asid: '1', ods: 'C1', interactions: [METADATA] }],
  providers: [
    { asid: '2', ods: 'P2', endpoints: [{ url: 'https://gp.example/A1/STU3/1/gpconnect/fhir', interactions: [METADATA] }] },
    { asid: '3', ods: 'P3', endpoints: [{ url: 'http://root.example:8443', interactions: [METADATA] }] },
  ],
  agreements: [{ id: 'x', consumers: ['C1'], providers: '*' }],
});

const route = (to: string, target: string) => resolveRoute(index, '1', to, METADATA, target);

describe('resolveRoute', () => {
  test.each([
    ['https://gp.example/A1/STU3/1/gpconnect/fhir/metadata', '/A1/STU3/1/gpconnect/fhir/metadata'],
    ['https://gp.example/A1/STU3/1/gpconnect/fhir', '/A1/STU3/1/gpconnect/fhir'],
    ['https://gp.example/A1/STU3/1/gpconnect/fhir?_format=json', '/A1/STU3/1/gpconnect/fhir?_format=json'],
    ['https://gp.example/A1/STU3/1/gpconnect/fhir/Patient?identifier=x|9000000009', '/A1/STU3/1/gpconnect/fhir/Patient?identifier=x|9000000009'],
  ])('%s goes to %s on the registered host', (target, path) => {
    const r = route('2', target) as Route;
    expect(r).not.toBeInstanceOf(Refusal);
    expect(r.upstreamPath).toBe(path);
    expect(r.endpoint.hostname).toBe('gp.example');
    expect(r.endpoint.port).toBe(443);
  });

  test('a root endpoint takes any path on its origin, and a bare query gets its "/"', () => {
    expect((route('3', 'http://root.example:8443/metadata') as Route).upstreamPath).toBe('/metadata');
    expect((route('3', 'http://root.example:8443') as Route).upstreamPath).toBe('/');
    expect((route('3', 'http://root.example:8443?x=1') as Route).upstreamPath).toBe('/?x=1');
    expect(route('3', 'http://root.example:84430/metadata')).toBeInstanceOf(Refusal);
  });

  test('the target shown in a mismatch refusal has no query', () => {
    const r = route('2', 'https://gp.example/B9/Patient?identifier=secret') as Refusal;
    expect(r.code).toBe('ENDPOINT_VARIES_FROM_TARGETURL');
    expect(r.display).toBe('ENDPOINT_https://gp.example/A1/STU3/1/gpconnect/fhir_VARIES_FROM_TARGETURL_https://gp.example/B9/Patient');
  });
});

import { DirectoryIndex, type Endpoint } from '../../../src/directory';
import { refuse } from '../../../src/errors';
import { upstreamPathFor } from '../../../src/route';

const METADATA = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
const index = new DirectoryIndex({
  consumers: [{ asid: '1', ods: 'C1', interactions: [METADATA] }],
  providers: [
    { asid: '2', ods: 'P2', endpoints: [{ url: 'https://gp.example/A1/STU3/1/gpconnect/fhir', interactions: [METADATA] }] },
    { asid: '3', ods: 'P3', endpoints: [{ url: 'http://root.example:8443', interactions: [METADATA] }] },
  ],
  agreements: [{ id: 'x', consumers: ['C1'], providers: '*' }],
});

const endpointOf = (to: string): Endpoint => index.providers.get(to)!.endpointFor.get(METADATA)!;
const path = (to: string, target: string) => upstreamPathFor(target, endpointOf(to));

describe('upstreamPathFor: the target under the registered endpoint', () => {
  test.each([
    ['https://gp.example/A1/STU3/1/gpconnect/fhir/metadata', '/A1/STU3/1/gpconnect/fhir/metadata'],
    ['https://gp.example/A1/STU3/1/gpconnect/fhir', '/A1/STU3/1/gpconnect/fhir'],
    ['https://gp.example/A1/STU3/1/gpconnect/fhir?_format=json', '/A1/STU3/1/gpconnect/fhir?_format=json'],
    ['https://gp.example/A1/STU3/1/gpconnect/fhir/Patient?identifier=x|9000000009', '/A1/STU3/1/gpconnect/fhir/Patient?identifier=x|9000000009'],
  ])('%s goes to %s on the registered host', (target, expected) => {
    expect(path('2', target)).toBe(expected);
    expect(endpointOf('2').hostname).toBe('gp.example');
    expect(endpointOf('2').port).toBe(443);
  });

  test('a root endpoint takes any path on its origin, and a bare query gets its "/"', () => {
    expect(path('3', 'http://root.example:8443/metadata')).toBe('/metadata');
    expect(path('3', 'http://root.example:8443')).toBe('/');
    expect(path('3', 'http://root.example:8443?x=1')).toBe('/?x=1');
    expect(path('3', 'http://root.example:84430/metadata')).toBeNull();
  });

  test.each(['https://gp.example/A1/STU3/1/gpconnect/fhirx', 'https://gp.example/A1/STU3/1/gpconnect', 'https://GP.example/A1/STU3/1/gpconnect/fhir/metadata'])(
    '%s does not lie under the endpoint',
    (target) => expect(path('2', target)).toBeNull(),
  );

  test('the target shown in a mismatch refusal has no query', () => {
    const r = refuse.endpointVaries(endpointOf('2').url, 'https://gp.example/B9/Patient?identifier=secret', '2');
    expect(r.code).toBe('ENDPOINT_VARIES_FROM_TARGETURL');
    expect(r.display).toBe('ENDPOINT_https://gp.example/A1/STU3/1/gpconnect/fhir_VARIES_FROM_TARGETURL_https://gp.example/B9/Patient');
  });
});

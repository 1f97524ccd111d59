import { DirectoryIndex } from '../../../src/directory';
import type { Refusal } from '../../../src/errors';
import { routeThroughDirectory } from '../../../src/gateway';
import { CHECK_NAMES, REQUEST_CHECKS } from '../../../src/gateway/request-checks';
import type { Route } from '../../../src/route';

describe('the one ordered check list', () => {
  test('runs every named check once, in the real proxy\'s order (the order diagnose reports, README "Diagnose")', () => {
    expect(REQUEST_CHECKS.map((step) => step.name)).toEqual([...CHECK_NAMES]);
    expect(CHECK_NAMES).toEqual([
      'framing',
      'method',
      'headers',
      'target',
      'path_form',
      'sender',
      'receiver',
      'endpoint',
      'agreement',
      'certificate',
      'interaction',
      'jwt',
      'body_size',
      'rate_limit',
    ]);
  });
});

describe('routeThroughDirectory: the list routing without a request', () => {
  const METADATA = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
  const ROOT = 'https://gp.example/A1/STU3/1/gpconnect/fhir';
  const index = new DirectoryIndex({
    consumers: [
      { asid: '1', ods: 'C1', interactions: [METADATA] },
      { asid: '4', ods: 'C4', interactions: [METADATA] },
    ],
    providers: [{ asid: '2', ods: 'P2', endpoints: [{ url: ROOT, interactions: [METADATA] }] }],
    agreements: [{ id: 'x', consumers: ['C1'], providers: '*' }],
  });

  test('a routable request gets its Route', () => {
    const route = routeThroughDirectory(index, '1', '2', METADATA, `${ROOT}/metadata`) as Route;
    expect(route.endpoint.url).toBe(ROOT);
    expect(route.upstreamPath).toBe('/A1/STU3/1/gpconnect/fhir/metadata');
  });

  test.each([
    ['an unknown sender', '9', '2', `${ROOT}/metadata`, 'ASID_CHECK_FAILED_MESSAGESENDER'],
    ['an unknown receiver', '1', '9', `${ROOT}/metadata`, 'PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER'],
    ['a target under another endpoint', '1', '2', 'https://gp.example/B2/metadata', 'ENDPOINT_VARIES_FROM_TARGETURL'],
    ['no agreement', '4', '2', `${ROOT}/metadata`, 'FOT_CHECK_FAILED'],
  ])('%s is refused with the proxy code', (_what, from, to, target, code) => {
    expect((routeThroughDirectory(index, from, to, METADATA, target) as Refusal).code).toBe(code);
  });
});

import { CHECK_NAMES, REQUEST_CHECKS } from '../../../src/gateway/request-checks';

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

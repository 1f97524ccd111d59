import { classifyUpstreamFailure, ERROR_CODES, nonRefusalCodes, refusalCatalogue } from '../../../src/errors';

describe('ERROR_CODES', () => {
  it('names every refusal code and every non-refusal code as itself, and nothing else', () => {
    const expected = [...Object.keys(refusalCatalogue), ...Object.keys(nonRefusalCodes)].sort();
    expect(Object.keys(ERROR_CODES).sort()).toEqual(expected);
    for (const [name, code] of Object.entries(ERROR_CODES)) expect(code).toBe(name);
  });

  it('keeps non-refusal codes out of the refusal catalogue (nothing is written for them)', () => {
    for (const code of Object.keys(nonRefusalCodes)) expect(Object.keys(refusalCatalogue)).not.toContain(code);
  });
});

describe('classifyUpstreamFailure', () => {
  it('gives the outcome, status, code and reason together', () => {
    expect(classifyUpstreamFailure(undefined, true)).toEqual({ outcome: 'upstream_timeout', status: 504, code: 'UPSTREAM_TIMEOUT', reason: 'ETIMEDOUT' });
    expect(classifyUpstreamFailure(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), false)).toEqual({
      outcome: 'upstream_error',
      status: 502,
      code: 'ERROR_COMMUNICATING_TO_ENDPOINT',
      reason: 'ECONNREFUSED',
    });
  });

  it('records a connection closed mid-response without an error as a reset', () => {
    expect(classifyUpstreamFailure(undefined, false).reason).toBe('ECONNRESET');
  });

  it('never keeps an error code that is not a plain code', () => {
    expect(classifyUpstreamFailure(Object.assign(new Error('x'), { code: 'a message, not a code' }), false).reason).toBe('UNKNOWN');
    expect(classifyUpstreamFailure(new Error('no code'), false).reason).toBe('UNKNOWN');
  });
});

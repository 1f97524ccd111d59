import { filterQuery, normaliseTime, optionName, TIME_FILTERS, TRANSACTION_FILTERS } from '../../../src/cli/filters';

const NOW = Date.parse('2026-12-03T12:00:00.000Z');

describe('CLI filters', () => {
  test('options map to the API names; only the ones given', () => {
    const q = filterQuery(
      { consumerAsid: '200000000359', jwtRequestingOrganization: 'A1', from: '2h', limit: '5' },
      [...TRANSACTION_FILTERS, ...TIME_FILTERS],
      NOW,
    );
    expect(q.toString()).toBe('consumer_asid=200000000359&jwt_requesting_organization=A1&from=2026-12-03T10%3A00%3A00.000Z');
  });

  test('times: ages, dates and offset-less date-times (UTC) become ISO 8601; the rest goes to the API as typed', () => {
    expect(normaliseTime('30m', NOW)).toBe('2026-12-03T11:30:00.000Z');
    expect(normaliseTime('7d', NOW)).toBe('2026-11-26T12:00:00.000Z');
    expect(normaliseTime('now', NOW)).toBe('2026-12-03T12:00:00.000Z');
    expect(normaliseTime('2026-12-01', NOW)).toBe('2026-12-01T00:00:00Z');
    expect(normaliseTime('2026-12-01 09:30', NOW)).toBe('2026-12-01T09:30:00Z');
    expect(normaliseTime('2026-12-01T09:30:15.5', NOW)).toBe('2026-12-01T09:30:15.5Z');
    expect(normaliseTime('2026-12-01T09:30:00+01:00', NOW)).toBe('2026-12-01T09:30:00+01:00');
    expect(normaliseTime('last tuesday', NOW)).toBe('last tuesday');
  });

  test("the API's parameter names shown as the options people type", () => {
    expect(optionName('consumer_asid')).toBe('--consumer-asid');
    expect(optionName('group_by')).toBe('--group-by');
    expect(optionName('sql')).toBe('sql');
  });
});

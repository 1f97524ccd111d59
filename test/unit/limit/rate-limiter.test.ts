import { RateLimiter } from '../../../src/limit';

describe('RateLimiter', () => {
  let now = 0;
  const limiter = () => new RateLimiter({ consumer: null, provider: null }, () => now);

  test('a bucket gives its burst, then one token per 1/per_second, and says when to retry', () => {
    now = 0;
    const l = limiter();
    const limit = { perSecond: 2, burst: 3 };
    for (let i = 0; i < 3; i++) expect(l.admit('c', limit, 'p', null)).toBeNull();
    expect(l.admit('c', limit, 'p', null)).toMatchObject({ party: 'consumer', asid: 'c', retryAfterSeconds: 1 });
    now = 499;
    expect(l.admit('c', limit, 'p', null)).not.toBeNull();
    now = 500;
    expect(l.admit('c', limit, 'p', null)).toBeNull();
    now = 60_000; // refills to the burst, no further
    for (let i = 0; i < 3; i++) expect(l.admit('c', limit, 'p', null)).toBeNull();
    expect(l.admit('c', limit, 'p', null)).not.toBeNull();
  });

  test("a request refused for its provider spends none of its consumer's tokens", () => {
    now = 0;
    const l = limiter();
    const consumer = { perSecond: 1, burst: 2 };
    const provider = { perSecond: 0.001, burst: 1 };
    expect(l.admit('c', consumer, 'p', provider)).toBeNull();
    expect(l.admit('c', consumer, 'p', provider)).toMatchObject({ party: 'provider', asid: 'p', retryAfterSeconds: 1000 });
    expect(l.admit('c', consumer, 'other', null)).toBeNull(); // the consumer still has its second token
    expect(l.admit('c', consumer, 'other', null)).toMatchObject({ party: 'consumer' });
  });

  test('defaults apply where the directory sets no limit; none at all means unlimited', () => {
    now = 0;
    const l = new RateLimiter({ consumer: { perSecond: 1, burst: 1 }, provider: null }, () => now);
    expect(l.admit('c', null, 'p', null)).toBeNull();
    expect(l.admit('c', null, 'p', null)).toMatchObject({ party: 'consumer' });
    const free = limiter();
    for (let i = 0; i < 1000; i++) expect(free.admit('c', null, 'p', null)).toBeNull();
  });
});

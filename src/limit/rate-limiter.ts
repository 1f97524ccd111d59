import type { RateLimit } from '../directory';

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  at: number;
}

/** Over a limit: whose, and in how many whole seconds a retry can succeed (Retry-After). */
export interface Throttled {
  party: 'consumer' | 'provider';
  asid: string;
  limit: RateLimit;
  retryAfterSeconds: number;
}

/**
 * Token buckets per consumer ASID and per provider ASID, in this process. A request needs
 * one token from both; it takes neither unless both have one, so a request refused for
 * its provider does not spend its consumer's allowance. Buckets exist only for ASIDs the
 * directory knows (the caller routes first), so their number is bounded; they keep their
 * level across directory reloads and take the new limit at the next request.
 */
export class RateLimiter {
  private readonly consumers = new Map<string, Bucket>();
  private readonly providers = new Map<string, Bucket>();

  constructor(
    private readonly defaults: { consumer: RateLimit | null; provider: RateLimit | null },
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes a token for the pair, or says who is over its limit. Null limits are unlimited. */
  admit(consumerAsid: string, consumerLimit: RateLimit | null, providerAsid: string, providerLimit: RateLimit | null): Throttled | null {
    const cLimit = consumerLimit ?? this.defaults.consumer;
    const pLimit = providerLimit ?? this.defaults.provider;
    if (cLimit === null && pLimit === null) return null;
    const t = this.now();
    const c = cLimit === null ? null : refill(this.consumers, consumerAsid, cLimit, t);
    const p = pLimit === null ? null : refill(this.providers, providerAsid, pLimit, t);
    if (c !== null && c.tokens < 1) return throttled('consumer', consumerAsid, cLimit!, c);
    if (p !== null && p.tokens < 1) return throttled('provider', providerAsid, pLimit!, p);
    if (c !== null) c.tokens -= 1;
    if (p !== null) p.tokens -= 1;
    return null;
  }
}

function refill(buckets: Map<string, Bucket>, asid: string, limit: RateLimit, t: number): Bucket {
  let b = buckets.get(asid);
  if (b === undefined) {
    b = { tokens: limit.burst, at: t };
    buckets.set(asid, b);
    return b;
  }
  b.tokens = Math.min(limit.burst, b.tokens + ((t - b.at) / 1000) * limit.perSecond);
  b.at = t;
  return b;
}

function throttled(party: Throttled['party'], asid: string, limit: RateLimit, b: Bucket): Throttled {
  return { party, asid, limit, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / limit.perSecond)) };
}

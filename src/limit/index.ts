export { RateLimiter, type Throttled } from './rate-limiter';

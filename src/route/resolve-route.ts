import type { Consumer, Endpoint, Provider } from '../directory';

/** Where an authorised request goes: the registered endpoint and the exact request-target to send. */
export interface Route {
  readonly consumer: Consumer;
  readonly provider: Provider;
  readonly endpoint: Endpoint;
  /** Path and query exactly as the consumer sent them, below the registered origin. */
  readonly upstreamPath: string;
}

/**
 * Does `target` lie under `endpoint`? It must start with the registered origin and path
 * exactly as written, and continue at a segment boundary ("/" or "?") or end there.
 * A string comparison, as the real SSP makes: IP literals, another port or scheme,
 * `host.evil` suffixes and upper-case hosts all fail it. Returns the path and query to
 * send below the endpoint's origin, or null.
 *
 * The SSP's routing checks (sender accredited, receiver registered, target under the
 * endpoint, data-sharing agreement) are steps of the gateway's one ordered check list
 * (src/gateway/request-checks.ts), which the proxy and diagnose both run.
 */
export function upstreamPathFor(target: string, endpoint: Endpoint): string | null {
  const prefix = endpoint.url;
  if (!target.startsWith(prefix)) return null;
  const next = target.charCodeAt(prefix.length);
  if (target.length > prefix.length && next !== 0x2f && next !== 0x3f) return null;
  const rest = target.slice(endpoint.origin.length);
  return rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
}

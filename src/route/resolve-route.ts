import type { Consumer, DirectoryIndex, Endpoint, Provider } from '../directory';
import { refuse, type Refusal } from '../errors';

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
 * `host.evil` suffixes and upper-case hosts all fail it.
 */
function upstreamPathFor(target: string, endpoint: Endpoint): string | null {
  const prefix = endpoint.url;
  if (!target.startsWith(prefix)) return null;
  const next = target.charCodeAt(prefix.length);
  if (target.length > prefix.length && next !== 0x2f && next !== 0x3f) return null;
  const rest = target.slice(endpoint.origin.length);
  return rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
}

/**
 * Authorises a request against the directory, in the SSP's order (ssp-reference.md
 * section 3): sender accredited, receiver registered, target under the endpoint,
 * data-sharing agreement. Returns the Route or the refusal.
 */
export function resolveRoute(index: DirectoryIndex, from: string, to: string, interactionId: string, target: string): Route | Refusal {
  const consumer = index.consumers.get(from);
  if (consumer === undefined || !consumer.interactions.has(interactionId)) return refuse.senderNotAuthorised(from);
  const provider = index.providers.get(to);
  const endpoint = provider?.endpointFor.get(interactionId);
  if (provider === undefined || endpoint === undefined) return refuse.receiverNotAuthorised(to);
  const upstreamPath = upstreamPathFor(target, endpoint);
  if (upstreamPath === null) return refuse.endpointVaries(endpoint.url, target, to);
  if (index.agreements !== null && !index.agreements.covers(consumer.ods, provider.ods)) {
    return refuse.noAgreement(from, to);
  }
  return { consumer, provider, endpoint, upstreamPath };
}

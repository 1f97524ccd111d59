import type { DirectoryFile } from './schema';

/** A registered provider endpoint, parsed once at load: the proxy connects to exactly this. */
export interface Endpoint {
  /** As registered, without a trailing slash: what refusals and audit records show. */
  readonly url: string;
  /** `scheme://host[:port]` as registered; a target must start with exactly this. */
  readonly origin: string;
  readonly protocol: 'http:' | 'https:';
  /** Host name or IP to connect to (IPv6 without brackets). */
  readonly hostname: string;
  readonly port: number;
  /** The Host header the provider expects: its own authority. */
  readonly hostHeader: string;
}

/**
 * Every entry that clashes with an earlier one, each as `place: why` (place as in the
 * file: `consumers.3`, `providers.0.endpoints.1`), in file order. The index refuses the
 * first; the loader and `spine-gateway directory check` list them all.
 */
export function directoryConflicts(file: Pick<DirectoryFile, 'consumers' | 'providers'>, places?: { consumers: number[]; providers: number[] }): string[] {
  const problems: string[] = [];
  const at = (kind: 'consumers' | 'providers', i: number) => `${kind}.${places ? places[kind][i] : i}`;
  const consumerAt = new Map<string, string>();
  file.consumers.forEach((c, i) => {
    const first = consumerAt.get(c.asid);
    if (first !== undefined) problems.push(`${at('consumers', i)}: consumer ASID ${c.asid} is listed twice (also at ${first})`);
    else consumerAt.set(c.asid, at('consumers', i));
  });
  const providerAt = new Map<string, string>();
  file.providers.forEach((p, i) => {
    const first = providerAt.get(p.asid);
    if (first !== undefined) problems.push(`${at('providers', i)}: provider ASID ${p.asid} is listed twice (also at ${first})`);
    else providerAt.set(p.asid, at('providers', i));
    const endpointOf = new Map<string, number>();
    p.endpoints.forEach((e, j) => {
      for (const interaction of e.interactions) {
        const k = endpointOf.get(interaction);
        if (k === j) {
          problems.push(`${at('providers', i)}.endpoints.${j}: lists ${interaction} twice`);
        } else if (k !== undefined) {
          problems.push(`${at('providers', i)}.endpoints.${j}: provider ${p.asid} registers ${interaction} at two endpoints (${p.endpoints[k].url}, ${e.url})`);
        } else {
          endpointOf.set(interaction, j);
        }
      }
    });
  });
  return problems;
}

/** A token bucket's shape: `perSecond` refill, room for `burst` requests at once. */
export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

export interface Consumer {
  readonly asid: string;
  readonly ods: string;
  readonly name: string;
  readonly interactions: ReadonlySet<string>;
  /** Host names (lower case) a client certificate must carry to speak for this ASID; null: no binding. */
  readonly certificateFqdns: ReadonlySet<string> | null;
  /** Null: the RATE_LIMIT_CONSUMER_* defaults apply. */
  readonly rateLimit: RateLimit | null;
  /** `test` or `live` as the entry says; null: the ENVIRONMENT setting applies. */
  readonly environment: 'test' | 'live' | null;
}

export interface Provider {
  readonly asid: string;
  readonly ods: string;
  readonly name: string;
  /** Interaction ID → the one endpoint registered for it (SDS holds one MHS record per ASID and interaction). */
  readonly endpointFor: ReadonlyMap<string, Endpoint>;
  /** Null: the RATE_LIMIT_PROVIDER_* defaults apply. */
  readonly rateLimit: RateLimit | null;
}

/** Which consumer organisations may exchange with which provider organisations. */
class AgreementIndex {
  private readonly byConsumer = new Map<string, Set<string> | '*'>();
  private anyConsumer: Set<string> | '*' = new Set();

  add(consumers: string[] | '*', providers: string[] | '*'): void {
    if (consumers === '*') {
      this.anyConsumer = merge(this.anyConsumer, providers);
      return;
    }
    for (const c of consumers) this.byConsumer.set(c, merge(this.byConsumer.get(c) ?? new Set(), providers));
  }

  covers(consumerOds: string, providerOds: string): boolean {
    if (this.anyConsumer === '*' || this.anyConsumer.has(providerOds)) return true;
    const covered = this.byConsumer.get(consumerOds);
    return covered !== undefined && (covered === '*' || covered.has(providerOds));
  }
}

function merge(into: Set<string> | '*', providers: string[] | '*'): Set<string> | '*' {
  if (into === '*' || providers === '*') return '*';
  for (const p of providers) into.add(p);
  return into;
}

/** The compiled directory: a request costs map look-ups and one prefix comparison. */
export class DirectoryIndex {
  readonly consumers = new Map<string, Consumer>();
  readonly providers = new Map<string, Provider>();
  /** Null when the file has no `agreements` key: the check is off. */
  readonly agreements: AgreementIndex | null;
  readonly endpointCount: number;

  constructor(
    file: DirectoryFile,
    readonly loadedAt: number = Date.now(),
  ) {
    // The same conflicts `directory check` lists (all of them); a direct caller gets the first.
    const conflicts = directoryConflicts(file);
    if (conflicts.length > 0) throw new Error(conflicts[0]);
    for (const c of file.consumers) {
      this.consumers.set(c.asid, {
        asid: c.asid,
        ods: c.ods,
        name: c.name ?? '',
        interactions: new Set(c.interactions),
        certificateFqdns: c.certificate_fqdns ? new Set(c.certificate_fqdns.map((h) => h.toLowerCase())) : null,
        rateLimit: rateLimitOf(c.rate_limit),
        environment: c.environment ?? null,
      });
    }
    let endpoints = 0;
    for (const p of file.providers) {
      const endpointFor = new Map<string, Endpoint>();
      for (const e of p.endpoints) {
        const endpoint = compileEndpoint(e.url);
        endpoints++;
        for (const interaction of e.interactions) endpointFor.set(interaction, endpoint);
      }
      this.providers.set(p.asid, { asid: p.asid, ods: p.ods, name: p.name ?? '', endpointFor, rateLimit: rateLimitOf(p.rate_limit) });
    }
    this.endpointCount = endpoints;
    if (file.agreements === undefined) {
      this.agreements = null;
    } else {
      this.agreements = new AgreementIndex();
      for (const a of file.agreements) this.agreements.add(a.consumers, a.providers);
    }
  }
}

/** A directory entry's `rate_limit`, or null when it has none. */
function rateLimitOf(entry: { per_second: number; burst: number } | undefined): RateLimit | null {
  return entry === undefined ? null : { perSecond: entry.per_second, burst: entry.burst };
}

function compileEndpoint(registered: string): Endpoint {
  const url = new URL(registered);
  const protocol = url.protocol as 'http:' | 'https:';
  const origin = `${protocol}//${url.host}`;
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    url: origin + path,
    origin,
    protocol,
    hostname,
    port: url.port ? Number(url.port) : protocol === 'https:' ? 443 : 80,
    hostHeader: url.host,
  };
}

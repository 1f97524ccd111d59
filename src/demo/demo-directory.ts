import { stringify } from 'yaml';
import { serviceRoot, type CatalogueEntry } from './catalogue';

/**
 * The demo's directory: four practices on the sample provider and four consumer systems,
 * test and live, with an agreement set that leaves one of them out. Synthetic ASIDs and
 * ODS codes (A20047 and FA565 are the README's example pair).
 */
export interface DemoConsumer {
  readonly asid: string;
  readonly ods: string;
  readonly name: string;
  readonly environment: 'test' | 'live';
  /** The interactions it is accredited for, as a filter on the catalogue. */
  readonly accredited: (entry: CatalogueEntry) => boolean;
  readonly rateLimit?: { readonly per_second: number; readonly burst: number };
  /** Covered by the data-sharing agreement (NDSA). */
  readonly inAgreement: boolean;
}

export interface DemoPractice {
  readonly asid: string;
  readonly ods: string;
  readonly name: string;
  /** The capabilities it serves, each at its own service root. */
  readonly capabilities: readonly string[];
}

export interface DemoEndpoint {
  readonly url: string;
  readonly capability: string;
  readonly interactions: readonly CatalogueEntry[];
}

const ALL_CAPABILITIES = ['foundations', 'appointment-management', 'access-record-structured', 'access-document', 'access-record-html'];

/** The first practice serves every interaction of the catalogue, each capability at its own service root. */
export const PRACTICES: readonly DemoPractice[] = [
  { asid: '918999198993', ods: 'A20047', name: 'Riverside Surgery (every capability)', capabilities: ALL_CAPABILITIES },
  { asid: '918999198994', ods: 'GPC002', name: 'Hillside Surgery (the structured record only)', capabilities: ['access-record-structured'] },
  { asid: '918999198996', ods: 'GPC004', name: 'Slowbrook Surgery (a slow system: answers after 3 s)', capabilities: ['foundations'] },
];
/** The practice whose system answers too slowly: every request to it ends in the gateway's timeout. */
export const SLOW_PRACTICE = PRACTICES[2];

const PHARMACY_READS = new Set([
  'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
  'urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1',
  'urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1',
  'urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1',
  'urn:nhs:names:services:gpconnect:fhir:rest:read:appointment-1',
  'urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1',
]);

export const CONSUMERS = {
  pharmacy: {
    asid: '200000000359',
    ods: 'FA565',
    name: 'Riverside Pharmacy (live; reads, slot searches and the structured record, no booking)',
    environment: 'live',
    accredited: (e) => PHARMACY_READS.has(e.id),
    inAgreement: true,
  },
  urgentCare: {
    asid: '200000000360',
    ods: 'Y01111',
    name: 'NHS 111 urgent care (live; reads and bookings)',
    environment: 'live',
    accredited: (e) => e.capability !== 'access-record-html',
    inAgreement: true,
  },
  integrator: {
    asid: '200000000900',
    ods: 'X26TST',
    name: "An integrator's test system (test; every interaction, rate-limited to 2 a second)",
    environment: 'test',
    accredited: () => true,
    rateLimit: { per_second: 2, burst: 4 },
    inAgreement: true,
  },
  hospital: {
    asid: '200000000700',
    ods: 'RHOSP1',
    name: 'City Hospital (live; its data-sharing agreement is not signed yet)',
    environment: 'live',
    accredited: (e) => PHARMACY_READS.has(e.id),
    inAgreement: false,
  },
} as const satisfies Record<string, DemoConsumer>;

/** A practice's endpoints on the sample provider, one per capability root (an interaction at one endpoint only, README "The directory"). */
export function endpointsOf(practice: DemoPractice, catalogue: readonly CatalogueEntry[], origin: string): DemoEndpoint[] {
  const taken = new Set<string>();
  const endpoints = new Map<string, { url: string; capability: string; interactions: CatalogueEntry[] }>();
  for (const entry of catalogue) {
    if (!practice.capabilities.includes(entry.capability) || taken.has(entry.id)) continue;
    taken.add(entry.id);
    const url = serviceRoot(origin, practice.ods, entry.capability);
    const endpoint = endpoints.get(url) ?? { url, capability: entry.capability, interactions: [] };
    endpoint.interactions.push(entry);
    endpoints.set(url, endpoint);
  }
  return [...endpoints.values()];
}

/** The directory file's text for a sample provider at `origin`. */
export function demoDirectoryYaml(catalogue: readonly CatalogueEntry[], origin: string): string {
  const ids = (entries: readonly CatalogueEntry[]) => [...new Set(entries.map((e) => e.id))];
  const consumers = Object.values(CONSUMERS as Record<string, DemoConsumer>);
  const file = {
    consumers: consumers.map((c) => ({
      asid: c.asid,
      ods: c.ods,
      name: c.name,
      environment: c.environment,
      interactions: ids(catalogue.filter(c.accredited)),
      ...(c.rateLimit === undefined ? {} : { rate_limit: c.rateLimit }),
    })),
    providers: PRACTICES.map((p) => ({
      asid: p.asid,
      ods: p.ods,
      name: p.name,
      endpoints: endpointsOf(p, catalogue, origin).map((e) => ({ url: e.url, interactions: ids(e.interactions) })),
    })),
    agreements: [{ id: 'NDSA', consumers: consumers.filter((c) => c.inAgreement).map((c) => c.ods), providers: '*' }],
  };
  return `# Written by npm run demo at each start (src/demo/demo-directory.ts): edit that file, not this one.\n${stringify(file)}`;
}

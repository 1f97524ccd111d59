import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './test-kit';

/**
 * SDS FHIR API search results for the directory import's tests, made from the fixtures
 * (test/fixtures/gpconnect/sds, copied from NHS Digital's integration adaptor). The fixtures
 * are two unrelated test answers: the Device's party key is not the Endpoint's and its
 * interaction is a placeholder ("service:interaction"). These copies keep every field and
 * system of the fixtures and change only the values: one provider (the Endpoint fixture's
 * party key and ODS code, the Device fixture's ASID) with an MHS record per interaction of
 * the catalogue, and one consumer.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const DEVICE_FIXTURE = join(FIXTURES, 'sds', 'sds-fhir-device-bundle.json');
export const ENDPOINT_FIXTURE = join(FIXTURES, 'sds', 'sds-fhir-endpoint-bundle.json');
export const SDS_ERROR_FIXTURE = join(FIXTURES, 'sds', 'sds-fhir-error-operationoutcome.json');

const deviceBundle = (): Json => JSON.parse(readFileSync(DEVICE_FIXTURE, 'utf8'));
const endpointBundle = (): Json => JSON.parse(readFileSync(ENDPOINT_FIXTURE, 'utf8'));

export const CATALOGUE: ReadonlyArray<{ id: string; capability: string; method: string; pathRegex: string }> = JSON.parse(
  readFileSync(join(FIXTURES, 'interactions.json'), 'utf8'),
);

/** The fixture Device's ASID, made the provider's. */
export const SDS_PROVIDER = { asid: '928942012545', ods: 'ABC123', partyKey: 'ABC123-822104' } as const;
export const SDS_CONSUMER = { asid: '200000000359', ods: 'FA565', partyKey: 'FA565-000001' } as const;

/** Service root path per capability (ssp-reference.md section 1: `/[ODS]/[FHIR version]/[major]/[routing segment]`). */
export const CAPABILITY_PATH: Record<string, string> = {
  foundations: '/ABC123/STU3/1/gpconnect/fhir',
  'appointment-management': '/ABC123/STU3/1/gpconnect/fhir',
  'access-record-structured': '/ABC123/STU3/1/gpconnect/structured/fhir',
  'access-document': '/ABC123/STU3/1/gpconnect/documents/fhir',
  'access-record-html': '/ABC123/DSTU2/1/gpconnect/fhir',
};

export interface DeviceValues {
  asid?: string;
  partyKey?: string;
  ods?: string;
  interactions?: string[];
  manufacturer?: string;
  fullUrl?: string;
}

/** A Device entry: the fixture's, with these values. */
export function deviceEntry(values: DeviceValues): Json {
  const entry = deviceBundle().entry[0];
  const r = entry.resource;
  if (values.fullUrl !== undefined) entry.fullUrl = values.fullUrl;
  if (values.asid !== undefined) r.identifier[0].value = values.asid;
  if (values.partyKey !== undefined) r.identifier[1].value = values.partyKey;
  if (values.ods !== undefined) r.owner.identifier.value = values.ods;
  if (values.manufacturer !== undefined) r.extension[0].valueReference.identifier.value = values.manufacturer;
  if (values.interactions !== undefined) {
    const template = r.extension[1];
    r.extension = [
      r.extension[0],
      ...values.interactions.map((id) => ({ ...template, valueReference: { identifier: { ...template.valueReference.identifier, value: id } } })),
    ];
  }
  return entry;
}

export interface EndpointValues {
  partyKey?: string;
  ods?: string;
  address?: string;
  interaction?: string;
  fqdn?: string;
  cpaId?: string;
  status?: string;
  fullUrl?: string;
}

/** An Endpoint entry: the fixture's, with these values. */
export function endpointEntry(values: EndpointValues): Json {
  const entry = endpointBundle().entry[0];
  const r = entry.resource;
  if (values.fullUrl !== undefined) entry.fullUrl = values.fullUrl;
  if (values.address !== undefined) r.address = values.address;
  if (values.ods !== undefined) r.managingOrganization.identifier.value = values.ods;
  if (values.fqdn !== undefined) r.identifier[0].value = values.fqdn;
  if (values.partyKey !== undefined) r.identifier[1].value = values.partyKey;
  if (values.cpaId !== undefined) r.identifier[2].value = r.identifier[3].value = values.cpaId;
  if (values.status !== undefined) r.status = values.status;
  if (values.interaction !== undefined) r.extension[1].valueReference.identifier.value = values.interaction;
  return entry;
}

/** A searchset Bundle of these entries, as the fixtures' envelope. */
export function bundle(kind: 'Device' | 'Endpoint', entries: Json[]): string {
  const b = kind === 'Device' ? deviceBundle() : endpointBundle();
  b.entry = entries;
  b.total = entries.length;
  return JSON.stringify(b, null, 2);
}

let counter = 0;
/** A CPA id as SDS writes them (20 hex digits), unique in this process. */
export function cpaId(): string {
  counter++;
  return `4ec1563fbe8e49bb${counter.toString(16).padStart(4, '0')}`;
}

/**
 * The provider with an MHS record (address `base` + its capability's path) for every
 * interaction of the catalogue, the consumer accredited for all of them. `base`: e.g.
 * `http://test` (the fixture's) or `http://127.0.0.1:<port>` for a real provider.
 */
export function sdsTestBundles(base: string): { devices: string; endpoints: string; rootOf: Map<string, string> } {
  const ids = CATALOGUE.map((i) => i.id);
  const rootOf = new Map(CATALOGUE.map((i) => [i.id, base + CAPABILITY_PATH[i.capability]]));
  const devices = bundle('Device', [
    deviceEntry({ ...SDS_PROVIDER, interactions: ids }),
    deviceEntry({ ...SDS_CONSUMER, interactions: ids, manufacturer: 'YGM24', fullUrl: 'http://127.0.0.1:61191/device/3d3b2f0e-5e0f-4a55-9d3c-2f1b1e3c4a10' }),
  ]);
  const endpoints = bundle(
    'Endpoint',
    ids.map((id, i) =>
      endpointEntry({
        ...SDS_PROVIDER,
        interaction: id,
        address: `${rootOf.get(id)}/`,
        cpaId: cpaId(),
        fullUrl: `http://internal-dev.apis.ptl.api.platform.nhs.uk/Endpoint/CEA3DAEC-4A25-4A4F-89F9-34AB84ED${(0x4ddc + i).toString(16).toUpperCase()}`,
      }),
    ),
  );
  return { devices, endpoints, rootOf };
}

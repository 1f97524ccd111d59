import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CAPABILITY_ROOTS, readFixture, shortId, type CatalogueEntry } from './catalogue';

/**
 * The demo's GP Connect provider: many practices on one port, told apart by the ODS code
 * in the service root (`/{ODS}/STU3/1/gpconnect/{fhir|structured/fhir|documents/fhir|html/fhir}`).
 * It answers every interaction of INTERACTIONS_FILE with the public example payloads of
 * test/fixtures/gpconnect (read from there, not copied: one copy, with its provenance in
 * that folder's README), 404 with an OperationOutcome for anything else. One practice is
 * deliberately slow, to show the gateway's timeout. Synthetic data only.
 */
export interface SampleProviderOptions {
  readonly catalogue: readonly CatalogueEntry[];
  /** The slow practice's ODS code and how long it takes to answer. */
  readonly slow?: { readonly ods: string; readonly delayMs: number };
  /** Add a realistic latency (a few ms, now and then a few hundred) to every other answer. Default true. */
  readonly latency?: boolean;
}

export const FHIR_JSON = 'application/fhir+json;charset=utf-8';
/** Request bodies are read (to tell amend from cancel, medications from allergies) up to this much; the rest is drained. */
const MAX_SNIFF_BYTES = 1 << 20;

interface Answer {
  readonly status: number;
  readonly body: Buffer;
}
type Responder = (requestBody: string, path: string) => Answer;

const json = (value: unknown) => Buffer.from(JSON.stringify(value, null, 2));
const parse = (file: string) => JSON.parse(readFixture(file).toString('utf8')) as { entry?: Array<{ resource: { resourceType: string; id: string } }> };
const ok =
  (body: Buffer): Responder =>
  () => ({ status: 200, body });

/** The first resource of `type` in a fixture bundle: the fixtures have no single Practitioner, Organization or Location. */
function resourceIn(file: string, type: string): { resourceType: string; id: string } {
  const found = parse(file).entry?.find((e) => e.resource.resourceType === type);
  if (found === undefined) throw new Error(`fixture ${file} holds no ${type}`);
  return found.resource;
}
const searchset = (resource: unknown) => ({
  resourceType: 'Bundle',
  meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1'] },
  type: 'searchset',
  entry: [{ resource }],
});

/** Ids the fixtures use, so the generator's reads find something (and other ids get a provider 404). */
export const FIXTURE_IDS = {
  patient: resourceIn('foundations/patient-search-response.json', 'Patient').id,
  practitioner: resourceIn('appointments/search-for-free-slots-response.json', 'Practitioner').id,
  organization: resourceIn('appointments/search-for-free-slots-response.json', 'Organization').id,
  location: resourceIn('appointments/search-for-free-slots-response.json', 'Location').id,
  appointment: (JSON.parse(readFixture('appointments/read-appointment-response.json').toString('utf8')) as { id: string }).id,
  binary: '27863182736',
} as const;

/**
 * What each interaction answers. Where the fixtures have no payload of that kind, the
 * nearest one stands in, said here: a single Patient, Practitioner, Organization or
 * Location is taken out of a fixture bundle (and wrapped in a searchset for the searches
 * by identifier); the Access Document and Access Record HTML metadata reads answer the
 * Foundations CapabilityStatement; a Binary and the HTML care record are built (no fixture).
 */
function responders(): (entry: CatalogueEntry) => Responder | null {
  const capabilityFoundations = ok(readFixture('foundations/capabilitystatement-foundations-appointments.json'));
  const patientBundle = readFixture('foundations/patient-search-response.json');
  const patient = json(resourceIn('foundations/patient-search-response.json', 'Patient'));
  const patientNotFound = readFixture('operationoutcome/provider-404-patient-not-found.json');
  const practitioner = resourceIn('appointments/search-for-free-slots-response.json', 'Practitioner');
  const organization = resourceIn('appointments/search-for-free-slots-response.json', 'Organization');
  const medications = readFixture('structured/getstructuredrecord-medications-response.json');
  const allergies = readFixture('structured/getstructuredrecord-allergies-response.json');
  const binary = json({
    resourceType: 'Binary',
    id: FIXTURE_IDS.binary,
    contentType: 'text/plain',
    content: Buffer.from('Synthetic discharge letter (demo).').toString('base64'),
  });
  const careRecord = json({
    resourceType: 'Bundle',
    type: 'searchset',
    entry: [
      {
        resource: {
          resourceType: 'Composition',
          status: 'final',
          title: 'Summary',
          section: [{ text: { status: 'generated', div: '<div>Synthetic summary (demo).</div>' } }],
        },
      },
    ],
  });
  const amend = readFixture('appointments/amend-appointment-request.json');
  const cancel = readFixture('appointments/cancel-appointment-request.json');

  const byId: Record<string, Responder> = {
    'rest:read:patient-1': (_body, path) =>
      path.endsWith(`/Patient/${FIXTURE_IDS.patient}`) ? { status: 200, body: patient } : { status: 404, body: patientNotFound },
    'rest:search:patient-1': ok(patientBundle),
    'rest:read:practitioner-1': ok(json(practitioner)),
    'rest:search:practitioner-1': ok(json(searchset(practitioner))),
    'rest:read:organization-1': ok(json(organization)),
    'rest:search:organization-1': ok(json(searchset(organization))),
    'rest:read:location-1': ok(json(resourceIn('appointments/search-for-free-slots-response.json', 'Location'))),
    'operation:gpc.registerpatient-1': ok(readFixture('foundations/register-patient-response.json')),
    'rest:search:slot-1': ok(readFixture('appointments/search-for-free-slots-response.json')),
    'rest:read:appointment-1': ok(readFixture('appointments/read-appointment-response.json')),
    'rest:create:appointment-1': () => ({ status: 201, body: readFixture('appointments/book-appointment-response.json') }),
    // Amend and cancel share PUT /Appointment/{id}: the body's status tells them apart.
    'rest:update:appointment-1': (body) => ({ status: 200, body: /"status"\s*:\s*"cancelled"/.test(body) ? cancel : amend }),
    'rest:cancel:appointment-1': (body) => ({ status: 200, body: /"status"\s*:\s*"cancelled"/.test(body) ? cancel : amend }),
    'rest:search:patient_appointments-1': ok(readFixture('appointments/retrieve-patients-appointments-response.json')),
    'operation:gpc.getstructuredrecord-1': (body) => ({ status: 200, body: body.includes('includeAllergies') ? allergies : medications }),
    'operation:gpc.migratestructuredrecord-1': ok(medications),
    'rest:search:documentreference-1': ok(readFixture('documents/documentreference-search-response.json')),
    'rest:read:binary-1': ok(binary),
    'rest:migrate:binary-1': ok(binary),
    'rest:read:metadata': capabilityFoundations,
    'operation:gpc.getcarerecord': ok(careRecord),
  };
  const metadata: Record<string, Responder> = {
    foundations: capabilityFoundations,
    'access-record-structured': ok(readFixture('structured/capabilitystatement-structured.json')),
    'access-document': capabilityFoundations,
  };
  return (entry) => {
    const key = shortId(entry);
    return key === 'rest:read:metadata-1' ? (metadata[entry.capability] ?? null) : (byId[key] ?? null);
  };
}

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly respond: Responder;
}

/** The routes of each capability root, in catalogue order (the first fit answers: update and cancel, read and migrate Binary, answer alike). */
export function buildRoutes(catalogue: readonly CatalogueEntry[]): Map<string, Route[]> {
  const responderFor = responders();
  const routes = new Map<string, Route[]>();
  for (const entry of catalogue) {
    const respond = responderFor(entry);
    if (respond === null) throw new Error(`the demo provider has no payload for ${entry.id} (${entry.capability}): add one in src/demo/sample-provider.ts`);
    const root = CAPABILITY_ROOTS[entry.capability];
    const list = routes.get(root) ?? [];
    list.push({ method: entry.method, pattern: new RegExp(entry.pathRegex), respond });
    routes.set(root, list);
  }
  return routes;
}

const SERVICE_ROOT = /^\/([A-Za-z0-9]{1,12})\/STU3\/1\/gpconnect\/(fhir|structured\/fhir|documents\/fhir|html\/fhir)(\/[^?]*)?(?:\?.*)?$/;

/** A realistic provider latency: mostly a few milliseconds, one answer in twenty a few hundred. */
function latencyMs(): number {
  return Math.random() < 0.05 ? 200 + Math.random() * 400 : 3 + Math.random() * 30;
}

export function createSampleProvider(options: SampleProviderOptions): Server {
  const routes = buildRoutes(options.catalogue);
  const notFound = readFixture('operationoutcome/provider-404-no-record-found.json');
  const latency = options.latency ?? true;

  function answer(req: IncomingMessage, res: ServerResponse, body: string): void {
    const match = SERVICE_ROOT.exec(req.url ?? '');
    const path = match?.[3] ?? '';
    const route = match === null ? undefined : routes.get(match[2])?.find((r) => r.method === req.method && r.pattern.test(path));
    const { status, body: payload } = route === undefined ? { status: 404, body: notFound } : route.respond(body, path);
    const delay = match !== null && match[1] === options.slow?.ods ? options.slow.delayMs : latency ? latencyMs() : 0;
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': payload.length, 'Cache-Control': 'no-store' });
      res.end(payload);
    };
    if (delay === 0) return send();
    const timer = setTimeout(send, delay);
    res.on('close', () => clearTimeout(timer)); // the gateway gave up (timeout): nothing left to answer
  }

  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size < MAX_SNIFF_BYTES) chunks.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => res.destroy());
  });
}

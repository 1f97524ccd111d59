import { randomUUID } from 'node:crypto';
import { exampleToken } from '../check';
import { readFixture, scopeOf, shortId, type CatalogueEntry } from './catalogue';
import { CONSUMERS, PRACTICES, SLOW_PRACTICE, endpointsOf, type DemoConsumer, type DemoEndpoint, type DemoPractice } from './demo-directory';
import { FIXTURE_IDS } from './sample-provider';

/**
 * The traffic generator's mix: what a consumer system sends through the gateway, each
 * request built like a real one (Ssp-* headers, a GP Connect 1.x token from exampleToken,
 * the fixtures' request bodies), and the refusals of every kind a misconfigured or
 * mistaken consumer runs into. Weights are per 1,000 picks and roughly follow real GP
 * Connect traffic: patient searches and metadata reads most, bookings and cancellations
 * less; refusals are over-represented so that a few minutes show every kind.
 */
export interface DemoRequest {
  readonly method: string;
  /** The provider URL the consumer writes after the gateway's `/`. */
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

export interface Scenario {
  /** What it shows, for the demo's output. */
  readonly name: string;
  readonly weight: number;
  /**
   * What it shows: the status and code it is answered with ("403 FOT_CHECK_FAILED"), or
   * undefined for a request a provider answers 2xx. The bad tokens show their refusal only
   * with JWT_CHECK=enforce (the default, report, forwards them with findings); a burst
   * shows it on its last requests.
   */
  readonly expect?: string;
  /** One request, or a burst (the rate-limit scenario). */
  make(): DemoRequest[];
}

const SEARCH_NHS_NUMBER = 'identifier=https://fhir.nhs.uk/Id/nhs-number%7C9999999999';
const day = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

/** The path under the service root and the body of a well-formed request for `entry`. */
export function requestFor(entry: CatalogueEntry): { path: string; body?: Buffer } {
  switch (shortId(entry)) {
    case 'rest:read:metadata-1':
    case 'rest:read:metadata':
      return { path: '/metadata' };
    case 'rest:read:patient-1':
      return { path: `/Patient/${FIXTURE_IDS.patient}` };
    case 'rest:search:patient-1':
      return { path: `/Patient?${SEARCH_NHS_NUMBER}` };
    case 'rest:read:practitioner-1':
      return { path: `/Practitioner/${FIXTURE_IDS.practitioner}` };
    case 'rest:search:practitioner-1':
      return { path: '/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id%7CG13579135' };
    case 'rest:read:organization-1':
      return { path: `/Organization/${FIXTURE_IDS.organization}` };
    case 'rest:search:organization-1':
      return { path: '/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code%7CA20047' };
    case 'rest:read:location-1':
      return { path: `/Location/${FIXTURE_IDS.location}` };
    case 'operation:gpc.registerpatient-1':
      return { path: '/Patient/$gpc.registerpatient', body: readFixture('foundations/register-patient-request.json') };
    case 'rest:search:slot-1':
      return { path: `/Slot?start=ge${day(1)}&end=le${day(8)}&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Practitioner` };
    case 'rest:read:appointment-1':
      return { path: `/Appointment/${FIXTURE_IDS.appointment}` };
    case 'rest:create:appointment-1':
      return { path: '/Appointment', body: readFixture('appointments/book-appointment-request.json') };
    case 'rest:update:appointment-1':
      return { path: `/Appointment/${FIXTURE_IDS.appointment}`, body: readFixture('appointments/amend-appointment-request.json') };
    case 'rest:cancel:appointment-1':
      return { path: `/Appointment/${FIXTURE_IDS.appointment}`, body: readFixture('appointments/cancel-appointment-request.json') };
    case 'rest:search:patient_appointments-1':
      return { path: `/Patient/${FIXTURE_IDS.patient}/Appointment?start=ge${day(-30)}&start=le${day(30)}` };
    case 'operation:gpc.getstructuredrecord-1':
      return {
        path: '/Patient/$gpc.getstructuredrecord',
        body: readFixture(
          Math.random() < 0.5 ? 'structured/getstructuredrecord-medications-request.json' : 'structured/getstructuredrecord-allergies-request.json',
        ),
      };
    case 'operation:gpc.migratestructuredrecord-1':
      return { path: '/Patient/$gpc.migratestructuredrecord', body: readFixture('structured/getstructuredrecord-medications-request.json') };
    case 'rest:search:documentreference-1':
      return {
        path: `/Patient/${FIXTURE_IDS.patient}/DocumentReference?_include=DocumentReference:subject:Patient&_include=DocumentReference:custodian:Organization`,
      };
    case 'rest:read:binary-1':
    case 'rest:migrate:binary-1':
      return { path: `/Binary/${FIXTURE_IDS.binary}` };
    case 'operation:gpc.getcarerecord':
      return {
        path: '/Patient/$gpc.getcarerecord',
        body: Buffer.from(
          JSON.stringify({
            resourceType: 'Parameters',
            parameter: [{ name: 'patientNHSNumber', valueIdentifier: { system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9999999999' } }],
          }),
        ),
      };
    default:
      throw new Error(`the demo's traffic generator has no request for ${entry.id}: add one in src/demo/scenarios.ts`);
  }
}

/** How much of the mix each interaction gets among the forwarded requests (unnamed ones: 10). */
const INTERACTION_WEIGHTS: Readonly<Record<string, number>> = {
  'rest:read:metadata-1': 40,
  'rest:search:patient-1': 80,
  'rest:read:patient-1': 40,
  'rest:search:slot-1': 60,
  'rest:create:appointment-1': 30,
  'rest:read:appointment-1': 20,
  'rest:search:patient_appointments-1': 20,
  'operation:gpc.getstructuredrecord-1': 70,
  'rest:search:documentreference-1': 20,
};

/** One consumer calling one interaction at one practice's endpoint. */
export interface Call {
  readonly consumer: DemoConsumer;
  readonly practice: DemoPractice;
  readonly endpoint: DemoEndpoint;
  readonly entry: CatalogueEntry;
}

/** Builds one request: the consumer's Ssp-* headers and token, the entry's method, path and body. */
export function buildRequest(
  call: Call,
  change: { method?: string; path?: string; interaction?: string; headers?: Record<string, string | undefined>; target?: string } = {},
): DemoRequest {
  const { consumer, practice, endpoint, entry } = call;
  const { path, body } = requestFor(entry);
  const headers: Record<string, string | undefined> = {
    'Ssp-TraceID': randomUUID(),
    'Ssp-From': consumer.asid,
    'Ssp-To': practice.asid,
    'Ssp-InteractionID': change.interaction ?? entry.id,
    Authorization: `Bearer ${exampleToken({ aud: endpoint.url, scope: scopeOf(entry), ods: consumer.ods })}`,
    Accept: 'application/fhir+json',
    ...(body === undefined ? {} : { 'Content-Type': 'application/fhir+json;charset=utf-8' }),
    ...change.headers,
  };
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) clean[k] = v;
  return { method: change.method ?? entry.method, target: change.target ?? `${endpoint.url}${change.path ?? path}`, headers: clean, body };
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];

/** The whole mix for a sample provider at `origin`. */
export function demoScenarios(catalogue: readonly CatalogueEntry[], origin: string): Scenario[] {
  const endpoints = new Map(PRACTICES.map((p) => [p, endpointsOf(p, catalogue, origin)]));
  const callsOf = (consumer: DemoConsumer, practices: readonly DemoPractice[] = PRACTICES.filter((p) => p !== SLOW_PRACTICE)): Call[] =>
    practices.flatMap((practice) =>
      endpoints
        .get(practice)!
        .flatMap((endpoint) => endpoint.interactions.filter(consumer.accredited).map((entry) => ({ consumer, practice, endpoint, entry }))),
    );
  const find = (consumer: DemoConsumer, idEnd: string, practice = PRACTICES[0]): Call => {
    const call =
      callsOf(consumer, [practice]).find((c) => c.entry.id.endsWith(idEnd)) ??
      callsOf(CONSUMERS.integrator, [practice]).find((c) => c.entry.id.endsWith(idEnd));
    if (call === undefined) throw new Error(`demo: no ${idEnd} at ${practice.ods}`);
    return { ...call, consumer };
  };

  // Forwarded: each consumer's accredited interactions, weighted by how common each is.
  const live = [CONSUMERS.pharmacy, CONSUMERS.urgentCare];
  const forwarded: Scenario[] = [...live, CONSUMERS.integrator].flatMap((consumer) => {
    const calls = callsOf(consumer);
    const weightOf = (call: Call) => INTERACTION_WEIGHTS[shortId(call.entry)] ?? 10;
    const total = calls.reduce((sum, call) => sum + weightOf(call), 0);
    // Each live system sends about as much as the other; the test system half as much.
    const share = consumer.environment === 'test' ? 0.5 : 1;
    return calls.map((call) => ({
      name: `${consumer.environment}: ${call.entry.operation}`,
      weight: (share * weightOf(call)) / total,
      make: () => [buildRequest(call)],
    }));
  });
  const scale = 520 / forwarded.reduce((sum, s) => sum + s.weight, 0);
  const mix: Scenario[] = forwarded.map((s) => ({ ...s, weight: s.weight * scale }));

  const read = find(CONSUMERS.pharmacy, 'search:patient-1');
  const slot = find(CONSUMERS.pharmacy, 'search:slot-1');
  mix.push(
    // A provider's own "no such patient" (forwarded, 404 PATIENT_NOT_FOUND).
    {
      name: 'provider 404: unknown patient',
      expect: '404 PATIENT_NOT_FOUND',
      weight: 25,
      make: () => [buildRequest(find(CONSUMERS.urgentCare, 'read:patient-1'), { path: '/Patient/0000000' })],
    },
    // The slow practice: the gateway gives up after UPSTREAM_TIMEOUT_MS (504 UPSTREAM_TIMEOUT).
    {
      name: 'slow practice: timeout',
      expect: '504 UPSTREAM_TIMEOUT',
      weight: 20,
      make: () => [buildRequest(find(pick(live), 'read:metadata-1', SLOW_PRACTICE))],
    },
    // Refusals, in the gateway's order of checks.
    {
      name: 'refused: method not allowed (DELETE)',
      expect: '405 METHOD_NOT_ALLOWED',
      weight: 25,
      make: () => [buildRequest(find(CONSUMERS.urgentCare, 'read:appointment-1'), { method: 'DELETE' })],
    },
    {
      name: 'refused: a missing Ssp-TraceID',
      expect: '400 MISSING_OR_INVALID_HEADER',
      weight: 20,
      make: () => [buildRequest(read, { headers: { 'Ssp-TraceID': undefined } })],
    },
    {
      name: 'refused: a path that climbs out (..)',
      expect: '400 AMBIGUOUS_PATH',
      weight: 15,
      make: () => [buildRequest(read, { path: '/Patient/%2e%2e/metadata' })],
    },
    {
      name: 'refused: unknown sender ASID',
      expect: '403 ASID_CHECK_FAILED_MESSAGESENDER',
      weight: 35,
      make: () => [buildRequest(read, { headers: { 'Ssp-From': '200000000999' } })],
    },
    {
      name: 'refused: sender not accredited (pharmacy cancels)',
      expect: '403 ASID_CHECK_FAILED_MESSAGESENDER',
      weight: 35,
      make: () => [buildRequest(find(CONSUMERS.pharmacy, 'cancel:appointment-1'))],
    },
    // A slot search sent to the structured record practice, which has no slots.
    {
      name: 'refused: receiver not registered for it',
      expect: '403 PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER',
      weight: 25,
      make: () => [
        buildRequest({ ...find(CONSUMERS.urgentCare, 'search:slot-1'), practice: PRACTICES[1] }, { target: `${endpoints.get(PRACTICES[1])![0].url}/Slot` }),
      ],
    },
    {
      name: 'refused: wrong endpoint (localhost for 127.0.0.1)',
      expect: '400 ENDPOINT_VARIES_FROM_TARGETURL',
      weight: 30,
      make: () => [buildRequest(read, { target: read.endpoint.url.replace('127.0.0.1', 'localhost') + '/metadata' })],
    },
    {
      name: 'refused: no data-sharing agreement',
      expect: '403 FOT_CHECK_FAILED',
      weight: 35,
      make: () => [buildRequest(find(CONSUMERS.hospital, 'operation:gpc.getstructuredrecord-1'))],
    },
    // Issue 12's bypass: the pharmacy, not accredited to book, POSTs /Appointment under the slot search interaction.
    {
      name: 'refused: interaction mismatch (a booking sent as a slot search)',
      expect: '400 INTERACTION_MISMATCH',
      weight: 35,
      make: () => [buildRequest(find(CONSUMERS.pharmacy, 'create:appointment-1'), { interaction: slot.entry.id })],
    },
    // The test system fires a burst over its 2 a second: the last ones get 429.
    {
      name: 'refused: rate limited (a burst of 8)',
      expect: '429 RATE_LIMITED',
      weight: 15,
      make: () => Array.from({ length: 8 }, () => buildRequest(find(CONSUMERS.integrator, 'read:metadata-1'))),
    },
    // Bad tokens: findings with JWT_CHECK=report (forwarded), 400 BAD_REQUEST with enforce.
    { name: 'bad JWT: not a JWT', expect: '400 BAD_REQUEST', weight: 15, make: () => [buildRequest(read, { headers: { Authorization: 'Bearer not-a-jwt' } })] },
    {
      name: 'bad JWT: no Authorization header',
      expect: '400 BAD_REQUEST',
      weight: 10,
      make: () => [buildRequest(read, { headers: { Authorization: undefined } })],
    },
    {
      name: 'bad JWT: expired, for another provider',
      expect: '400 BAD_REQUEST',
      weight: 15,
      make: () => [buildRequest(read, { headers: { Authorization: `Bearer ${badToken(read)}` } })],
    },
  );
  return mix;
}

/** A token an hour old, with the wrong audience and a scope the interaction does not allow. */
function badToken(call: Call): string {
  return exampleToken({
    aud: 'https://another.provider.example/fhir',
    scope: 'patient/*.write',
    ods: call.consumer.ods,
    iatSeconds: Math.floor(Date.now() / 1000) - 3600,
  });
}

/** A weighted pick over the mix. */
export function chooser(mix: readonly Scenario[]): () => Scenario {
  const total = mix.reduce((sum, s) => sum + s.weight, 0);
  return () => {
    let r = Math.random() * total;
    for (const s of mix) if ((r -= s.weight) < 0) return s;
    return mix[mix.length - 1];
  };
}

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { searchUntil } from '../helpers/audit-kit';
import { getText, parseExposition } from '../helpers/metrics-kit';
import { CONSUMER_ASID, FIXTURES, PROVIDER_ASID, rawExchange, startGateway, startProvider, type RunningGateway, type TestProvider } from '../helpers/test-kit';

/**
 * The interaction check end to end (README "Interaction check"): a real gateway, a real
 * provider that counts its TCP connections, raw bytes on the wire. For every interaction
 * of the fixtures: its right form is forwarded, and a wrong method, a wrong path and
 * another interaction's path under the same endpoint are refused (enforce, the default)
 * before any byte reaches the provider, or forwarded and counted (report).
 */

interface Interaction {
  id: string;
  method: string;
  path: string;
  pathRegex: string;
  capability: string;
}
const INTERACTIONS_FILE = join(FIXTURES, 'interactions.json');
const INTERACTIONS = JSON.parse(readFileSync(INTERACTIONS_FILE, 'utf8')) as Interaction[];

/** Each capability's service root below the provider's origin (Foundations and Appointments share one server). */
const SERVICE_ROOT: Record<string, string> = {
  foundations: '/A20047/STU3/1/gpconnect/fhir',
  'appointment-management': '/A20047/STU3/1/gpconnect/fhir',
  'access-record-structured': '/A20047/STU3/1/gpconnect/structured/fhir',
  'access-document': '/A20047/STU3/1/gpconnect/documents/fhir',
  'access-record-html': '/A20047/DSTU2/1/gpconnect/fhir',
};
const rootOf = (i: Interaction) => SERVICE_ROOT[i.capability];

/** An interaction the directory lists but INTERACTIONS_FILE does not. */
const UNCATALOGUED = 'urn:nhs:names:services:gpconnect:fhir:rest:read:healthcareservice-1';

/** A concrete request (path and query below the service root) of the template's form; "Canary" marks what the consumer sent. */
function concrete(template: string): string {
  return template
    .replace(/\{&\.\.\.\}/g, '&_count=5')
    .replace(/\{date\}/g, '2026-12-03')
    .replace('?{params}', '?_include=DocumentReference:subject:Patient&_revinclude:recurse=PractitionerRole:practitioner')
    .replace('{system}|{value}', 'https://fhir.nhs.uk/Id/nhs-number%7C9000000009')
    .replace(/\{id\}/g, 'Canary9000000009');
}

/** `concrete` with `suffix` added to the path, before the query. */
function withPathSuffix(template: string, suffix: string): string {
  const c = concrete(template);
  const q = c.indexOf('?');
  return q < 0 ? c + suffix : c.slice(0, q) + suffix + c.slice(q);
}

const pathOnly = (target: string) => target.split('?')[0];

/** Another interaction under the same service root whose path is not of `x`'s form. */
function otherUnderSameRoot(x: Interaction): Interaction {
  const own = new RegExp(x.pathRegex);
  const other = INTERACTIONS.find((y) => y.id !== x.id && rootOf(y) === rootOf(x) && !own.test(pathOnly(concrete(y.path))));
  if (other === undefined) throw new Error(`no other interaction under ${rootOf(x)} for ${x.id}`);
  return other;
}

const wrongMethodFor = (method: string) => (method === 'GET' ? 'POST' : method === 'POST' ? 'GET' : 'POST');

function directory(port: number): string {
  const ids = [...INTERACTIONS.map((i) => i.id), UNCATALOGUED];
  const roots = [...new Set(Object.values(SERVICE_ROOT))];
  const endpoints = roots
    .map((root) => {
      const here = INTERACTIONS.filter((i) => rootOf(i) === root).map((i) => i.id);
      if (root === SERVICE_ROOT.foundations) here.push(UNCATALOGUED);
      return `      - url: http://127.0.0.1:${port}${root}\n        interactions: [${here.join(', ')}]\n`;
    })
    .join('');
  return `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${ids.join(', ')}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
${endpoints}`;
}

/** Raw request bytes: the target is the provider's absolute URL, a POST or PUT carries a small JSON body. */
function requestBytes(port: number, method: string, interactionId: string, below: string, traceId: string = randomUUID()): string {
  const body = method === 'POST' || method === 'PUT' ? '{"resourceType":"Parameters"}' : '';
  return (
    `${method} /http://127.0.0.1:${port}${below} HTTP/1.1\r\nHost: gateway.local\r\n` +
    `Ssp-TraceID: ${traceId}\r\nSsp-From: ${CONSUMER_ASID}\r\nSsp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${interactionId}\r\n` +
    (body ? `Content-Type: application/fhir+json\r\nContent-Length: ${body.length}\r\n` : '') +
    `Connection: close\r\n\r\n${body}`
  );
}

interface Answer {
  status: number;
  code: string;
  diagnostics: string;
  text: string;
}

function parse(raw: string): Answer {
  const status = Number(raw.slice(9, 12));
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  try {
    const issue = JSON.parse(body).issue[0];
    return { status, code: issue.details.coding[0].display, diagnostics: issue.diagnostics, text: raw };
  } catch {
    return { status, code: '', diagnostics: '', text: raw };
  }
}

async function exchange(gw: RunningGateway, provider: TestProvider, method: string, interactionId: string, below: string, traceId?: string): Promise<Answer> {
  return parse(await rawExchange(gw.proxyPort, requestBytes(provider.port, method, interactionId, below, traceId), 5000));
}

/** Answers 201 to a POST (as a booking would be) and 200 otherwise, after reading the body. */
function providerHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/fhir+json', Connection: 'close' });
    res.end('{"resourceType":"Bundle"}');
  });
}

async function findingCounts(gw: RunningGateway): Promise<Record<string, number>> {
  const series = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
  const out: Record<string, number> = {};
  for (const [name, value] of series) {
    const m = /^spine_gateway_interaction_findings_total\{finding="([A-Z_]+)"\}$/.exec(name);
    if (m && value !== 0) out[m[1]] = value;
  }
  return out;
}

function expectRefused(answer: Answer, x: Interaction): void {
  expect(answer.status).toBe(400);
  expect(answer.code).toBe('INTERACTION_MISMATCH');
  // Names the expected method and path form...
  expect(answer.diagnostics).toContain(`${x.id}: it expects ${x.method} <endpoint>${x.path}`);
  // ...and never what the consumer sent.
  expect(answer.text).not.toContain('Canary');
}

test('the fixtures give every interaction a wrong path of another interaction under its service root', () => {
  for (const x of INTERACTIONS) expect(otherUnderSameRoot(x)).toBeDefined();
  expect(INTERACTIONS.length).toBe(25);
});

describe('INTERACTION_CHECK=enforce: wrong forms are refused before any byte reaches the provider', () => {
  let provider: TestProvider;
  let gw: RunningGateway;
  beforeAll(async () => {
    provider = await startProvider(providerHandler);
    gw = await startGateway(directory(provider.port), { INTERACTIONS_FILE, INTERACTION_CHECK: 'enforce' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });
  afterEach(() => {
    // Every case here is refused: the provider never sees a connection, let alone a request.
    expect(provider.connections).toBe(0);
    expect(provider.requests).toHaveLength(0);
  });

  test.each(INTERACTIONS.map((x) => [x.id, x] as const))('%s: a wrong method', async (_id, x) => {
    expectRefused(await exchange(gw, provider, wrongMethodFor(x.method), x.id, rootOf(x) + concrete(x.path)), x);
  });

  test.each(INTERACTIONS.map((x) => [x.id, x] as const))('%s: a wrong path', async (_id, x) => {
    expectRefused(await exchange(gw, provider, x.method, x.id, rootOf(x) + withPathSuffix(x.path, '/CanaryExtra')), x);
  });

  test.each(INTERACTIONS.map((x) => [x.id, x] as const))('%s: the path of another interaction under the same endpoint', async (_id, x) => {
    const other = otherUnderSameRoot(x);
    expectRefused(await exchange(gw, provider, x.method, x.id, rootOf(x) + concrete(other.path)), x);
  });

  test('the attack in issue 12: a booking (POST /Appointment) sent as a slot search', async () => {
    const slot = INTERACTIONS.find((i) => i.id.endsWith(':search:slot-1'))!;
    const raw = await rawExchange(gw.proxyPort, requestBytes(provider.port, 'POST', slot.id, `${SERVICE_ROOT['appointment-management']}/Appointment`), 5000);
    const answer = parse(raw);
    expectRefused(answer, slot);
    expect(answer.diagnostics).toContain('GET <endpoint>/Slot?start=ge{date}&end=le{date}&status=free&_include=Slot:schedule{&...}');
  });

  test('variants of the attack: other methods, spellings and disguises of a booking under a read or a search', async () => {
    const byId = (suffix: string) => INTERACTIONS.find((i) => i.id.endsWith(suffix))!;
    const root = SERVICE_ROOT['appointment-management'];
    const slotQuery = '?start=ge2026-12-03&end=le2026-12-10&status=free&_include=Slot:schedule';
    const cases: Array<[string, Interaction, string, string]> = [
      ['the slot query added to the booking', byId(':search:slot-1'), 'POST', `${root}/Appointment${slotQuery}`],
      ['a booking as a slot search, with the right path and query', byId(':search:slot-1'), 'POST', `${root}/Slot${slotQuery}`],
      ['an amendment (PUT) as an appointment read', byId(':read:appointment-1'), 'PUT', `${root}/Appointment/Canary1`],
      ['a booking with a trailing slash', byId(':create:appointment-1'), 'POST', `${root}/Appointment/`],
      ['a booking in lower case', byId(':create:appointment-1'), 'POST', `${root}/appointment`],
      ['an operation with an escaped $ under its own ID', byId(':gpc.registerpatient-1'), 'POST', `${root}/Patient/%24gpc.registerpatient`],
      ['an operation as a patient read', byId(':fhir:rest:read:patient-1'), 'GET', `${root}/Patient/$gpc.registerpatient`],
      ['a booking under the endpoint, then the endpoint again', byId(':create:appointment-1'), 'POST', `${root}${root}/Appointment`],
    ];
    for (const [what, x, method, below] of cases) {
      const answer = await exchange(gw, provider, method, x.id, below);
      expect({ what, status: answer.status, code: answer.code }).toEqual({ what, status: 400, code: 'INTERACTION_MISMATCH' });
      expect(answer.text).not.toContain('Canary');
    }
    // Disguises that a provider may resolve to another path are refused before the check even runs ("Path forms").
    for (const below of [`${root}/Slot/../Appointment`, `${root}/Appointment%2F..%2FSlot`, `${root}/Slot;x=1`, `${root}/Slot${slotQuery}&_method=POST`]) {
      const answer = await exchange(gw, provider, 'POST', byId(':search:slot-1').id, below);
      expect({ below, status: answer.status, code: answer.code }).toEqual({ below, status: 400, code: 'AMBIGUOUS_PATH' });
    }
  });

  test('the path is the path under the endpoint: the right path under another service root does not fit', async () => {
    // read:metadata-1 is registered at .../gpconnect/fhir; /metadata at the origin is not under it (routing refuses that),
    // and the endpoint's own path repeated below it is not the interaction's path.
    const metadata = INTERACTIONS[0];
    expectRefused(await exchange(gw, provider, 'GET', metadata.id, `${rootOf(metadata)}${rootOf(metadata)}/metadata`), metadata);
    expectRefused(await exchange(gw, provider, 'GET', metadata.id, rootOf(metadata)), metadata);
    expectRefused(await exchange(gw, provider, 'GET', metadata.id, `${rootOf(metadata)}?x=CanaryQuery`), metadata);
  });

  test('a query the template names is required by name: missing, misspelt, prefixed or escaped names are refused', async () => {
    const search = INTERACTIONS.find((i) => i.id.endsWith(':fhir:rest:search:patient-1'))!;
    const root = rootOf(search);
    for (const query of ['', '?', '?_format=json&Canary=1', '?Identifier=Canary', '?identifierCanary=1', '?%69dentifier=Canary', '?Canary&identifie=1']) {
      const answer = await exchange(gw, provider, 'GET', search.id, `${root}/Patient${query}`);
      expectRefused(answer, search);
    }
    const slot = INTERACTIONS.find((i) => i.id.endsWith(':search:slot-1'))!;
    expectRefused(await exchange(gw, provider, 'GET', slot.id, `${root}/Slot?start=ge2026-12-03&end=le2026-12-10&status=free`), slot);
  });

  test('HEAD does not fit a POST or PUT interaction', async () => {
    const methodFindings = async () => (await findingCounts(gw)).INTERACTION_METHOD ?? 0;
    const before = await methodFindings();
    const nonGet = INTERACTIONS.filter((i) => i.method !== 'GET');
    for (const x of nonGet) {
      const answer = await exchange(gw, provider, 'HEAD', x.id, rootOf(x) + concrete(x.path));
      expect(answer.status).toBe(400); // a HEAD answer has no body to read the code from: the metrics say which check refused
    }
    expect((await methodFindings()) - before).toBe(nonGet.length);
  });
});

describe('INTERACTION_CHECK=enforce: right forms are forwarded exactly', () => {
  let provider: TestProvider;
  let gw: RunningGateway;
  beforeAll(async () => {
    provider = await startProvider(providerHandler);
    gw = await startGateway(directory(provider.port), { INTERACTIONS_FILE, INTERACTION_CHECK: 'enforce' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });

  test.each(INTERACTIONS.map((x) => [x.id, x] as const))('%s: its right form passes', async (_id, x) => {
    const below = rootOf(x) + concrete(x.path);
    const answer = await exchange(gw, provider, x.method, x.id, below);
    expect(answer.status).toBe(x.method === 'POST' ? 201 : 200);
    const seen = provider.requests[provider.requests.length - 1];
    expect(`${seen.method} ${seen.url}`).toBe(`${x.method} ${below}`);
  });

  test('HEAD fits a GET interaction; a query on an interaction whose template has none is not checked', async () => {
    const read = INTERACTIONS.find((i) => i.id.endsWith(':fhir:rest:read:patient-1'))!;
    expect((await exchange(gw, provider, 'HEAD', read.id, `${rootOf(read)}/Patient/9000000009`)).status).toBe(200);
    expect((await exchange(gw, provider, 'GET', read.id, `${rootOf(read)}/Patient/9000000009?_format=json&anything=1`)).status).toBe(200);
  });

  test('query names in any order, with other parameters and repeated, and a name without a value fit', async () => {
    const slot = INTERACTIONS.find((i) => i.id.endsWith(':search:slot-1'))!;
    const root = rootOf(slot);
    const query = '?_count=1&_include=Slot:schedule&status=free&end=le2026-12-10&start=ge2026-12-03&_include:recurse=Schedule:actor:Practitioner';
    expect((await exchange(gw, provider, 'GET', slot.id, `${root}/Slot${query}`)).status).toBe(200);
    const search = INTERACTIONS.find((i) => i.id.endsWith(':fhir:rest:search:patient-1'))!;
    expect((await exchange(gw, provider, 'GET', search.id, `${root}/Patient?identifier`)).status).toBe(200);
  });

  test('an interaction the directory lists but INTERACTIONS_FILE does not is forwarded, with its finding counted', async () => {
    const answer = await exchange(gw, provider, 'GET', UNCATALOGUED, `${SERVICE_ROOT.foundations}/HealthcareService/1`);
    expect(answer.status).toBe(200);
    expect(await findingCounts(gw)).toEqual({ INTERACTION_NOT_IN_CATALOGUE: 1 });
  });
});

describe('INTERACTION_CHECK=report: wrong forms are forwarded, recorded and counted', () => {
  let provider: TestProvider;
  let gw: RunningGateway;
  beforeAll(async () => {
    provider = await startProvider(providerHandler);
    gw = await startGateway(directory(provider.port), { INTERACTIONS_FILE, INTERACTION_CHECK: 'report', AUDIT_ENABLED: 'true' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });

  test('every interaction: a wrong method, a wrong path and another interaction path are forwarded and counted', async () => {
    let forwarded = 0;
    for (const x of INTERACTIONS) {
      const cases: Array<[string, string]> = [
        [wrongMethodFor(x.method), rootOf(x) + concrete(x.path)],
        [x.method, rootOf(x) + withPathSuffix(x.path, '/CanaryExtra')],
        [x.method, rootOf(x) + concrete(otherUnderSameRoot(x).path)],
      ];
      for (const [method, below] of cases) {
        const answer = await exchange(gw, provider, method, x.id, below);
        expect(answer.status).toBe(method === 'POST' ? 201 : 200);
        forwarded++;
        expect(provider.requests).toHaveLength(forwarded);
      }
    }
    const counts = await findingCounts(gw);
    expect(counts.INTERACTION_METHOD).toBe(INTERACTIONS.length);
    expect(counts.INTERACTION_PATH).toBe(2 * INTERACTIONS.length);
  });

  test('the attack in issue 12 is forwarded, and its record says the request did not fit the slot search', async () => {
    const slot = INTERACTIONS.find((i) => i.id.endsWith(':search:slot-1'))!;
    const traceId = randomUUID();
    const answer = await exchange(gw, provider, 'POST', slot.id, `${SERVICE_ROOT['appointment-management']}/Appointment`, traceId);
    expect(answer.status).toBe(201);
    const rows = await searchUntil(gw.adminPort, `trace_id=${traceId}`, (r) => r.length === 1 && r[0].outcome !== 'in_flight', 20_000);
    expect(rows[0]).toMatchObject({
      interaction_id: slot.id,
      method: 'POST',
      outcome: 'forwarded',
      interaction_findings: ['INTERACTION_METHOD', 'INTERACTION_PATH', 'INTERACTION_QUERY'],
    });
  }, 30_000);
});

describe('INTERACTION_CHECK unset and off', () => {
  let provider: TestProvider;
  beforeAll(async () => {
    provider = await startProvider(providerHandler);
  });
  afterAll(() => provider.close());

  test('unset means enforce: the booking sent as a slot search is refused with no provider connection', async () => {
    // test-kit turns the check off for other suites; undefined here leaves the setting at its default.
    const gw = await startGateway(directory(provider.port), { INTERACTIONS_FILE, INTERACTION_CHECK: undefined as unknown as string });
    try {
      const slot = INTERACTIONS.find((i) => i.id.endsWith(':search:slot-1'))!;
      expectRefused(await exchange(gw, provider, 'POST', slot.id, `${SERVICE_ROOT['appointment-management']}/Appointment`), slot);
      expect(provider.connections).toBe(0);
    } finally {
      await gw.stop();
    }
  });

  test('off: nothing is checked, nothing is counted', async () => {
    const gw = await startGateway(directory(provider.port), { INTERACTIONS_FILE, INTERACTION_CHECK: 'off' });
    try {
      const slot = INTERACTIONS.find((i) => i.id.endsWith(':search:slot-1'))!;
      expect((await exchange(gw, provider, 'POST', slot.id, `${SERVICE_ROOT['appointment-management']}/Appointment`)).status).toBe(201);
      expect(await findingCounts(gw)).toEqual({});
    } finally {
      await gw.stop();
    }
  });
});

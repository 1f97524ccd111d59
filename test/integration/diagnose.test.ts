import { randomUUID } from 'node:crypto';
import { exampleToken } from '../../src/check';
import { searchUntil } from '../helpers/audit-kit';
import { TestCa, type Issued } from '../helpers/pki';
import {
  METADATA,
  STRUCTURED,
  okHandler,
  rawExchange,
  send,
  startGateway,
  startProvider,
  type Reply,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * Diagnose (README "Diagnose"): `<METHOD> /_diagnose/<provider URL>` runs the proxy's own
 * checks and answers what the proxy would do, over real sockets, against a provider that
 * counts its connections: no diagnose ever opens one.
 */
const PATIENT_READ = 'urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1';
const PATIENT_SEARCH = 'urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1';
const TEST_CONSUMER = '200000000359';
const NOAGREE_CONSUMER = '200000000360';
const LIVE_CONSUMER = '200000000361';
const LIMITED_CONSUMER = '200000000370';
const UNKNOWN_CONSUMER = '200000000999';
const PROVIDER = '918999198993';
const UNKNOWN_PROVIDER = '918999190000';
const BOUND_HOST = 'pharmacy.example.nhs.uk';

let provider: TestProvider;
let ROOT: string;
/** Audit on, DIAGNOSE=test (default), ENVIRONMENT=test: unknown ASIDs count as test ones. */
let gw: RunningGateway;
/** DIAGNOSE=test with the default ENVIRONMENT (local). */
let gwLocal: RunningGateway;
/** DIAGNOSE=all, INTERACTION_CHECK=report. */
let gwAll: RunningGateway;
let gwOff: RunningGateway;
let gwEnforce: RunningGateway;

function directory(root: string, bound = ''): string {
  return `consumers:
  - asid: "${TEST_CONSUMER}"
    ods: "FA565"
    interactions: [${METADATA}, ${STRUCTURED}, ${PATIENT_SEARCH}]
    environment: test
${bound}  - asid: "${NOAGREE_CONSUMER}"
    ods: "NOAGREE"
    interactions: [${METADATA}]
    environment: test
  - asid: "${LIVE_CONSUMER}"
    ods: "FA565"
    interactions: [${METADATA}]
    environment: live
  - asid: "${LIMITED_CONSUMER}"
    ods: "FA565"
    interactions: [${METADATA}]
    environment: test
    rate_limit: { per_second: 0.01, burst: 2 }
providers:
  - asid: "${PROVIDER}"
    ods: "A20047"
    endpoints:
      - url: ${root}
        interactions: [${METADATA}, ${STRUCTURED}, ${PATIENT_READ}]
agreements:
  - id: NDSA
    consumers: ["FA565"]
    providers: "*"
`;
}

beforeAll(async () => {
  provider = await startProvider(okHandler());
  ROOT = provider.root;
  const dir = directory(ROOT);
  gw = await startGateway(dir, {
    AUDIT_ENABLED: 'true',
    ENVIRONMENT: 'test',
    MAX_REQUEST_BODY_BYTES: '1000',
    MAX_HEADER_LINES: '20',
    INTERACTION_CHECK: 'enforce',
  });
  gwLocal = await startGateway(dir);
  gwAll = await startGateway(dir, { DIAGNOSE: 'all', INTERACTION_CHECK: 'report' });
  gwOff = await startGateway(dir, { DIAGNOSE: 'off' });
  gwEnforce = await startGateway(dir, { JWT_CHECK: 'enforce' });
}, 60_000);
afterAll(async () => {
  for (const g of [gw, gwLocal, gwAll, gwOff, gwEnforce]) await g?.stop();
  await provider?.close();
});

/** The structured record's target: a POST interaction, for requests with a body. */
const record = () => `${ROOT}/Patient/$gpc.getstructuredrecord`;

/** A realistic token for the registered endpoint (the metadata interaction's scope). */
const token = () => exampleToken({ aud: ROOT, scope: 'organization/*.read' });

function ssp(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    'Ssp-TraceID': randomUUID(),
    'Ssp-From': TEST_CONSUMER,
    'Ssp-To': PROVIDER,
    'Ssp-InteractionID': METADATA,
    Authorization: `Bearer ${token()}`,
    ...overrides,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[k] = v;
  return out;
}

interface Answer {
  verdict: 'would_forward' | 'would_refuse';
  checks: Array<{ check: string; ok: boolean | null; detail: string }>;
  refusal?: { status: number; code: string; diagnostics: string };
  endpoint?: string;
  consumer?: { asid: string; environment: string; interactions: string[] };
  jwt: { mode: string; findings: Array<{ code: string; expected: string }> };
  interaction: { mode: string; findings: Array<{ code: string; expected: string }>; expected?: { method: string; path: string } };
}

/** A diagnose through node:http on a fresh connection; asserts the provider saw no connection. */
async function diagnose(
  g: RunningGateway,
  target: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ reply: Reply; answer: Answer }> {
  const before = provider.connections;
  const reply = await send(g.url(`_diagnose/${target}`), { method: options.method, headers: options.headers ?? ssp(), body: options.body });
  expect(provider.connections).toBe(before);
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  return { reply, answer: JSON.parse(reply.body.toString()) as Answer };
}

/** The same over a raw socket (for requests a client library would not send); the reply's head and JSON answer. */
async function rawDiagnose(g: RunningGateway, text: string): Promise<{ head: string; answer: Answer }> {
  const before = provider.connections;
  const raw = await rawExchange(g.proxyPort, text);
  expect(provider.connections).toBe(before);
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
  return { head, answer: JSON.parse(raw.slice(split + 4)) as Answer };
}

function rawRequest(method: string, target: string, headers: Record<string, string>, extra: string[] = [], body = ''): string {
  let text = `${method} /_diagnose/${target} HTTP/1.1\r\nHost: gateway.local\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  for (const line of extra) text += `${line}\r\n`;
  return `${text}\r\n${body}`;
}

const check = (a: Answer, name: string) => a.checks.find((c) => c.check === name)!;

/** The answer refuses with `code`, and `failing` is the first check that is not ok. */
function expectRefusal(a: Answer, code: string, failing: string): void {
  expect(a.verdict).toBe('would_refuse');
  expect(a.refusal?.code).toBe(code);
  expect(a.checks.find((c) => c.ok === false)?.check).toBe(failing);
}

describe('a request that would be forwarded', () => {
  test('every check in the proxy order is ok, the endpoint and the accredited interactions are named, and nothing reaches the provider', async () => {
    const { answer } = await diagnose(gw, `${ROOT}/metadata`);
    expect(answer.verdict).toBe('would_forward');
    expect(answer.refusal).toBeUndefined();
    expect(answer.checks.map((c) => c.check)).toEqual([
      'framing',
      'method',
      'headers',
      'target',
      'path_form',
      'sender',
      'receiver',
      'endpoint',
      'agreement',
      'certificate',
      'interaction',
      'jwt',
      'body_size',
      'rate_limit',
    ]);
    expect(answer.checks.filter((c) => c.ok !== true || c.detail.length < 12)).toEqual([]);
    expect(answer.endpoint).toBe(ROOT);
    expect(answer.consumer).toEqual({ asid: TEST_CONSUMER, environment: 'test', interactions: [METADATA, PATIENT_SEARCH, STRUCTURED].sort() });
    expect(answer.jwt.mode).toBe('report');
    expect(answer.interaction.mode).toBe('enforce');
  });

  test('the real request with the same headers is forwarded (diagnose and proxy agree)', async () => {
    const before = provider.connections;
    const r = await send(gw.url(`${ROOT}/metadata`), { headers: ssp() });
    expect(r.status).toBe(200);
    expect(provider.connections).toBe(before + 1);
  });

  test("the answer never holds the consumer's path, query or token", async () => {
    const tok = exampleToken({ aud: ROOT, override: { jti: 'CANARYTOKEN' } });
    for (const target of [
      `${ROOT}/metadata?x=CANARYQUERY`,
      `${ROOT}/Patient/9000000009?identifier=CANARYQUERY`,
      `http://127.0.0.1:1/CANARYPATH/metadata?x=CANARYQUERY`,
    ]) {
      const { reply } = await diagnose(gw, target, { headers: ssp({ Authorization: `Bearer ${tok}`, 'Ssp-InteractionID': PATIENT_READ }) });
      const text = reply.body.toString();
      for (const canary of ['9000000009', 'CANARYQUERY', 'CANARYPATH', 'CANARYTOKEN', tok.slice(0, 30)]) expect(text).not.toContain(canary);
    }
  });
});

describe("each refusal of the README's table that can happen before forwarding: would_refuse with that code", () => {
  test.each([
    ['MISSING_OR_INVALID_HEADER', 'headers', () => ({ target: `${ROOT}/metadata`, headers: ssp({ 'Ssp-TraceID': undefined }) })],
    ['MISSING_OR_INVALID_HEADER', 'target', () => ({ target: 'ftp://gp.example/metadata', headers: ssp() })],
    ['AMBIGUOUS_PATH', 'path_form', () => ({ target: `${ROOT}/Patient%2F1`, headers: ssp() })],
    ['ASID_CHECK_FAILED_MESSAGESENDER', 'sender', () => ({ target: `${ROOT}/metadata`, headers: ssp({ 'Ssp-From': UNKNOWN_CONSUMER }) })],
    ['PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER', 'receiver', () => ({ target: `${ROOT}/metadata`, headers: ssp({ 'Ssp-To': UNKNOWN_PROVIDER }) })],
    [
      'ENDPOINT_VARIES_FROM_TARGETURL',
      'endpoint',
      () => ({ target: `http://127.0.0.2:${provider.port}/A20047/STU3/1/gpconnect/fhir/metadata`, headers: ssp() }),
    ],
    ['FOT_CHECK_FAILED', 'agreement', () => ({ target: `${ROOT}/metadata`, headers: ssp({ 'Ssp-From': NOAGREE_CONSUMER }) })],
    ['METHOD_NOT_ALLOWED', 'method', () => ({ target: `${ROOT}/metadata`, headers: ssp(), method: 'DELETE' })],
  ])('%s (%s)', async (code, failing, make) => {
    const { target, headers, method } = make() as { target: string; headers: Record<string, string>; method?: string };
    const { answer } = await diagnose(gw, target, { headers, method });
    expectRefusal(answer, code, failing);
    expect(answer.refusal!.diagnostics.length).toBeGreaterThan(20);
  });

  test('REQUEST_BODY_TOO_LARGE (body_size): the body is not read, and the connection closes after the answer', async () => {
    const { head, answer } = await rawDiagnose(
      gw,
      rawRequest('POST', record(), ssp({ 'Ssp-InteractionID': STRUCTURED, 'Content-Length': '2000' }), [], 'x'.repeat(100)),
    );
    expectRefusal(answer, 'REQUEST_BODY_TOO_LARGE', 'body_size');
    expect(head).toMatch(/\r\nConnection: close/i);
  });

  test('RATE_LIMITED (rate_limit): a diagnose takes a token as the real request would, and the real request then finds none', async () => {
    const headers = () => ssp({ 'Ssp-From': LIMITED_CONSUMER });
    for (let i = 0; i < 2; i++) expect((await diagnose(gw, `${ROOT}/metadata`, { headers: headers() })).answer.verdict).toBe('would_forward');
    const { answer } = await diagnose(gw, `${ROOT}/metadata`, { headers: headers() });
    expectRefusal(answer, 'RATE_LIMITED', 'rate_limit');
    expect(answer.refusal!.status).toBe(429);
    const before = provider.connections;
    const real = await send(gw.url(`${ROOT}/metadata`), { headers: headers() });
    expect(real.status).toBe(429);
    expect(provider.connections).toBe(before);
  });

  test.each([
    ['CONNECTION_OPTION_NOT_ALLOWED', ['Connection: Content-Length']],
    ['UPGRADE_NOT_SUPPORTED', ['Upgrade: h2c']],
    ['TOO_MANY_HEADERS', Array.from({ length: 25 }, (_, i) => `X-Pad-${i}: ${i}`)],
    ['MISSING_OR_INVALID_HEADER', ['Ssp_From: 999']],
  ])('%s (framing): answered, and the connection is closed after it', async (code, extra) => {
    const { head, answer } = await rawDiagnose(gw, rawRequest('GET', `${ROOT}/metadata`, ssp(), extra));
    expectRefusal(answer, code, 'framing');
    expect(head).toMatch(/\r\nConnection: close/i);
  });

  test('MALFORMED_HTTP_REQUEST (framing): a transfer coding other than chunked alone', async () => {
    const { head, answer } = await rawDiagnose(
      gw,
      rawRequest('POST', `${ROOT}/metadata`, ssp({ 'Transfer-Encoding': 'gzip, chunked' }), [], '1\r\nx\r\n0\r\n\r\n'),
    );
    expectRefusal(answer, 'MALFORMED_HTTP_REQUEST', 'framing');
    expect(head).toMatch(/\r\nConnection: close/i);
  });

  test('INTERACTION_MISMATCH (interaction): a booking sent as a metadata read', async () => {
    const { answer } = await diagnose(gw, `${ROOT}/Appointment`, { method: 'POST', body: '{}', headers: ssp({ 'Content-Type': 'application/fhir+json' }) });
    expectRefusal(answer, 'INTERACTION_MISMATCH', 'interaction');
    expect(answer.interaction.findings.map((f) => f.code)).toEqual(expect.arrayContaining(['INTERACTION_METHOD']));
    expect(answer.interaction.expected).toEqual({ method: 'GET', path: '/metadata' });
  });

  test('under INTERACTION_CHECK=report the same booking is forwarded, and its findings are shown', async () => {
    const { answer } = await diagnose(gwAll, `${ROOT}/Appointment`, { method: 'POST', body: '{}' });
    expect(answer.verdict).toBe('would_forward');
    expect(answer.interaction.mode).toBe('report');
    expect(check(answer, 'interaction').ok).toBe(true);
    expect(answer.interaction.findings).toContainEqual({ code: 'INTERACTION_METHOD', expected: expect.any(String) });
    expect(check(answer, 'interaction').detail).toContain('INTERACTION_CHECK=report');
    expect(check(answer, 'interaction').detail).toContain('GET <endpoint>/metadata');
  });

  test('BAD_REQUEST (jwt) under JWT_CHECK=enforce: a token that is not a JWT', async () => {
    const { answer } = await diagnose(gwEnforce, `${ROOT}/metadata`, { headers: ssp({ Authorization: 'Bearer not-a-jwt' }) });
    expectRefusal(answer, 'BAD_REQUEST', 'jwt');
    expect(answer.jwt.findings.map((f) => f.code)).toContain('JWT_MALFORMED');
  });

  test('under JWT_CHECK=report the same token is forwarded, and its findings are shown with what each rule expects', async () => {
    const { answer } = await diagnose(gw, `${ROOT}/metadata`, { headers: ssp({ Authorization: 'Bearer not-a-jwt' }) });
    expect(answer.verdict).toBe('would_forward');
    expect(check(answer, 'jwt').ok).toBe(true);
    expect(answer.jwt.findings).toContainEqual({ code: 'JWT_MALFORMED', expected: expect.any(String) });
    expect(check(answer, 'jwt').detail).toContain('JWT_MALFORMED');
  });

  test("refusals by Node's parser never reach diagnose: a header block too large gets the real 431", async () => {
    const raw = await rawExchange(gw.proxyPort, rawRequest('GET', `${ROOT}/metadata`, ssp(), [`X-Big: ${'a'.repeat(20_000)}`]));
    expect(raw).toMatch(/^HTTP\/1\.1 431 /);
    expect(raw).toContain('REQUEST_HEADERS_TOO_LARGE');
  });
});

describe('details a person can act on', () => {
  test('an unknown Ssp-From and a known one not accredited for the interaction say different things; the refusal is the same', async () => {
    const unknown = (await diagnose(gw, `${ROOT}/metadata`, { headers: ssp({ 'Ssp-From': UNKNOWN_CONSUMER }) })).answer;
    const notAccredited = (await diagnose(gw, `${ROOT}/Patient/1`, { headers: ssp({ 'Ssp-InteractionID': PATIENT_READ }) })).answer;
    expect(unknown.refusal!.code).toBe('ASID_CHECK_FAILED_MESSAGESENDER');
    expect(notAccredited.refusal!.code).toBe('ASID_CHECK_FAILED_MESSAGESENDER');
    const u = check(unknown, 'sender').detail;
    const n = check(notAccredited, 'sender').detail;
    expect(u).not.toBe(n);
    expect(u).toContain('not in this gateway');
    expect(n).toContain(`not accredited for ${PATIENT_READ}`);
    // The interactions it is accredited for are named.
    for (const id of [METADATA, STRUCTURED, PATIENT_SEARCH]) expect(n).toContain(id);
    expect(unknown.consumer).toBeUndefined();
  });

  test("a caller that is not a consumer in the directory is not told the provider's endpoint (the real proxy stops at the sender)", async () => {
    for (const target of [`${ROOT}/metadata`, `http://127.0.0.2:${provider.port}/A20047/STU3/1/gpconnect/fhir/metadata`]) {
      const { reply, answer } = await diagnose(gw, target, { headers: ssp({ 'Ssp-From': UNKNOWN_CONSUMER }) });
      expect(answer.endpoint).toBeUndefined();
      expect(reply.body.toString()).not.toContain(ROOT);
      const varies = target.includes('127.0.0.2');
      expect(check(answer, 'endpoint').ok).toBe(!varies);
      if (varies) expect(check(answer, 'endpoint').detail).toContain('told only to a consumer in the directory');
    }
  });

  test('checks after the first failure still run, and those that cannot be judged say why (ok null); the rate limit takes no token', async () => {
    const { answer } = await diagnose(gw, `${ROOT}/metadata`, { headers: ssp({ 'Ssp-From': UNKNOWN_CONSUMER, 'Ssp-To': UNKNOWN_PROVIDER }), method: 'DELETE' });
    expect(answer.refusal!.code).toBe('METHOD_NOT_ALLOWED');
    expect(check(answer, 'sender').ok).toBe(false);
    expect(check(answer, 'receiver').ok).toBe(false);
    expect(check(answer, 'receiver').detail).toContain(`Ssp-To ${UNKNOWN_PROVIDER} is not in this gateway`);
    for (const name of ['endpoint', 'agreement', 'certificate', 'interaction', 'rate_limit']) {
      expect(check(answer, name).ok).toBeNull();
      expect(check(answer, name).detail).toMatch(/^Not checked: /);
    }
    expect(check(answer, 'jwt').ok).toBe(true);
  });

  test('a known provider without an endpoint for the interaction is told apart from an unknown one', async () => {
    const { answer } = await diagnose(gw, `${ROOT}/Patient?identifier=x`, { headers: ssp({ 'Ssp-InteractionID': PATIENT_SEARCH }) });
    expectRefusal(answer, 'PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER', 'receiver');
    expect(check(answer, 'receiver').detail).toContain('is a provider in the directory');
  });

  test('several header problems are all named', async () => {
    const { answer } = await diagnose(gw, `${ROOT}/metadata`, { headers: ssp({ 'Ssp-TraceID': 'nope', 'Ssp-To': 'abc' }) });
    const detail = check(answer, 'headers').detail;
    expect(detail).toContain('Ssp-TraceID');
    expect(detail).toContain('Ssp-To');
    expect(detail).not.toContain('nope');
  });
});

describe('audit: outcome diagnosed', () => {
  test('one final record per diagnose, status 200, with the code the real request would get, found by the admin search', async () => {
    const forwardTrace = randomUUID();
    const refuseTrace = randomUUID();
    await diagnose(gw, `${ROOT}/metadata`, { headers: ssp({ 'Ssp-TraceID': forwardTrace }) });
    await diagnose(gw, `${ROOT}/metadata`, { headers: ssp({ 'Ssp-TraceID': refuseTrace, 'Ssp-To': UNKNOWN_PROVIDER }) });
    const forwarded = await searchUntil(gw.adminPort, `trace_id=${forwardTrace}`, (rows) => rows.length > 0);
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]).toMatchObject({
      outcome: 'diagnosed',
      status: 200,
      error_code: '',
      consumer_asid: TEST_CONSUMER,
      environment: 'test',
      endpoint: ROOT,
    });
    const refused = await searchUntil(gw.adminPort, `trace_id=${refuseTrace}`, (rows) => rows.length > 0);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({
      outcome: 'diagnosed',
      status: 200,
      error_code: 'PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER',
      consumer_ods: 'FA565',
    });
    const byOutcome = await searchUntil(gw.adminPort, `outcome=diagnosed&consumer_asid=${TEST_CONSUMER}`, (rows) => rows.length >= 2);
    expect(byOutcome.every((r) => r.outcome === 'diagnosed')).toBe(true);
  });
});

describe('request bodies are drained and dropped', () => {
  test('a body within the limit is read and the connection stays usable for the next request', async () => {
    const first = rawRequest('POST', record(), ssp({ 'Ssp-InteractionID': STRUCTURED, 'Content-Length': '10' }), [], '0123456789');
    const second = rawRequest('GET', `${ROOT}/metadata`, ssp(), ['Connection: close']);
    const before = provider.connections;
    const raw = await rawExchange(gw.proxyPort, first + second);
    expect(raw.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    expect(provider.connections).toBe(before);
  });

  test('Expect: 100-continue gets no 100 (the body is not needed): the answer comes at once and the connection closes', async () => {
    const raw = await rawExchange(
      gw.proxyPort,
      rawRequest('POST', record(), ssp({ 'Ssp-InteractionID': STRUCTURED, 'Content-Length': '10', Expect: '100-continue' })),
    );
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw).toMatch(/\r\nConnection: close/i);
  });

  test('a chunked body is not read (its length is unknown): answered, and the connection closes after the answer', async () => {
    const chunk = `3e8\r\n${'x'.repeat(1000)}\r\n`;
    const raw = await rawExchange(
      gw.proxyPort,
      rawRequest('POST', record(), ssp({ 'Ssp-InteractionID': STRUCTURED, 'Transfer-Encoding': 'chunked' }), [], chunk + chunk),
    );
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw).toMatch(/\r\nConnection: close/i);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).verdict).toBe('would_forward');
  });
});

describe('DIAGNOSE modes', () => {
  test('test (default): a test consumer is answered; a live, an unknown and a missing Ssp-From all get the same 403 DIAGNOSE_NOT_ALLOWED', async () => {
    expect((await diagnose(gwLocal, `${ROOT}/metadata`)).answer.verdict).toBe('would_forward');
    const bodies: string[] = [];
    for (const from of [LIVE_CONSUMER, UNKNOWN_CONSUMER, undefined]) {
      const before = provider.connections;
      const r = await send(gwLocal.url(`_diagnose/${ROOT}/metadata`), { headers: ssp({ 'Ssp-From': from }) });
      expect(r.status).toBe(403);
      const outcome = JSON.parse(r.body.toString());
      expect(outcome.issue[0].details.coding[0].display).toBe('DIAGNOSE_NOT_ALLOWED');
      bodies.push(outcome.issue[0].diagnostics);
      expect(provider.connections).toBe(before);
    }
    expect(new Set(bodies).size).toBe(1);
    expect(bodies[0]).toContain('environment: test');
  });

  test('test with ENVIRONMENT=test: consumers with no environment of their own (and unknown ones) count as test', async () => {
    expect((await diagnose(gw, `${ROOT}/metadata`, { headers: ssp({ 'Ssp-From': UNKNOWN_CONSUMER }) })).answer.verdict).toBe('would_refuse');
  });

  test('all: a live consumer is answered', async () => {
    const { answer } = await diagnose(gwAll, `${ROOT}/metadata`, { headers: ssp({ 'Ssp-From': LIVE_CONSUMER }) });
    expect(answer.verdict).toBe('would_forward');
    expect(answer.consumer?.environment).toBe('live');
  });

  test('off: 404 DIAGNOSE_NOT_AVAILABLE, even for a test consumer', async () => {
    const before = provider.connections;
    const r = await send(gwOff.url(`_diagnose/${ROOT}/metadata`), { headers: ssp() });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body.toString()).issue[0].details.coding[0].display).toBe('DIAGNOSE_NOT_AVAILABLE');
    expect(provider.connections).toBe(before);
  });
});

describe('over mutual TLS: the same TLS and certificate binding as a real request', () => {
  let spine: TestCa;
  let good: Issued;
  let otherHost: Issued;
  let tlsGw: RunningGateway;

  beforeAll(async () => {
    spine = TestCa.create('Test Spine CA');
    good = spine.issue(BOUND_HOST, { dns: [BOUND_HOST] });
    otherHost = spine.issue('care-home.example.nhs.uk', { dns: ['care-home.example.nhs.uk'] });
    const server = spine.issue('gateway.test', { usage: 'server', dns: ['localhost'] });
    const dir = directory(ROOT).replace('    environment: test\n', `    environment: test\n    certificate_fqdns: [${BOUND_HOST}]\n`);
    tlsGw = await startGateway(dir, { TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: spine.certFile });
  }, 60_000);
  afterAll(async () => {
    await tlsGw?.stop();
  });

  function tlsDiagnose(target: string, client: Issued | null, headers = ssp()) {
    return send(tlsGw.url(`_diagnose/${target}`), { headers, tls: { ca: spine.pem, cert: client?.certPem, key: client?.keyPem } });
  }

  test('the certificate registered for Ssp-From: would_forward, and its accredited interactions are named', async () => {
    const r = await tlsDiagnose(`${ROOT}/metadata`, good);
    expect(r.status).toBe(200);
    const answer = JSON.parse(r.body.toString()) as Answer;
    expect(answer.verdict).toBe('would_forward');
    expect(check(answer, 'certificate').detail).toContain('carries a host name registered');
    expect(answer.consumer?.interactions).toContain(METADATA);
  });

  test("another host's certificate: the real proxy's sender refusal, from the certificate check, and its accreditation is not told", async () => {
    const before = provider.connections;
    const r = await tlsDiagnose(`${ROOT}/Patient/1`, otherHost, ssp({ 'Ssp-InteractionID': PATIENT_READ }));
    expect(provider.connections).toBe(before);
    const answer = JSON.parse(r.body.toString()) as Answer;
    expect(answer.refusal?.code).toBe('ASID_CHECK_FAILED_MESSAGESENDER');
    expect(check(answer, 'certificate').ok).toBe(false);
    expect(check(answer, 'certificate').detail).toContain('care-home.example.nhs.uk');
    expect(answer.consumer).toBeUndefined();
    expect(r.body.toString()).not.toContain(ROOT);
    expect(check(answer, 'sender').detail).not.toContain(STRUCTURED);
    expect(check(answer, 'sender').detail).toContain('told only to a connection that may speak for it');
  });

  test('no client certificate: the handshake fails, as for a real request', async () => {
    await expect(tlsDiagnose(`${ROOT}/metadata`, null)).rejects.toThrow();
  });
});

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { getText, parseExposition } from '../helpers/metrics-kit';
import { TestCa } from '../helpers/pki';
import { RawConnection } from '../helpers/raw-conn';
import {
  CONSUMER_ASID,
  FIXTURES,
  METADATA,
  PROVIDER_ASID,
  rawExchange,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * Red team on the integrator features (issue 12): raw bytes over real sockets to a real
 * gateway in front of a real provider that records every request it is sent. Under
 * INTERACTION_CHECK=enforce, no request may reach the provider with a method or path of
 * another interaction than the one it names: each case counts the provider's requests.
 */

const INTERACTIONS_FILE = join(FIXTURES, 'interactions.json');
const ROOT = '/A20047/STU3/1/gpconnect/fhir';
const ID = {
  slot: 'urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1',
  create: 'urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1',
  update: 'urn:nhs:names:services:gpconnect:fhir:rest:update:appointment-1',
  readAppointment: 'urn:nhs:names:services:gpconnect:fhir:rest:read:appointment-1',
  register: 'urn:nhs:names:services:gpconnect:fhir:operation:gpc.registerpatient-1',
};
const SLOT_QUERY = '?start=ge2026-12-03&end=le2026-12-10&status=free&_include=Slot:schedule';

function directory(port: number): string {
  const ids = Object.values(ID).join(', ');
  return `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${ids}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: http://127.0.0.1:${port}${ROOT}
        interactions: [${ids}]
`;
}

/** The Ssp-* header lines of a request under `interactionId`. */
const ssp = (interactionId: string) =>
  `Host: gateway.local\r\nSsp-TraceID: ${randomUUID()}\r\nSsp-From: ${CONSUMER_ASID}\r\nSsp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${interactionId}\r\n`;

/** One whole request: `method` to the provider's `below` (path and query under its origin), with `extra` header lines and `body`. */
function request(port: number, method: string, interactionId: string, below: string, extra = '', body = '', version = 'HTTP/1.1'): string {
  const length = body === '' ? '' : `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  return `${method} /http://127.0.0.1:${port}${below} ${version}\r\n${ssp(interactionId)}${extra}${length}Connection: close\r\n\r\n${body}`;
}

const statusOf = (raw: string) => Number(raw.slice(9, 12));

function codeOf(raw: string): string {
  try {
    return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).issue[0].details.coding[0].display as string;
  } catch {
    return '';
  }
}

/** Answers 201 to a POST and 200 otherwise, after reading the whole body. */
function providerHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/fhir+json', 'Content-Length': '2' });
    res.end('{}');
  });
}

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

/** What the provider was sent while `run` ran, as "METHOD url" lines. */
async function seenDuring(run: () => Promise<unknown>): Promise<string[]> {
  const before = provider.requests.length;
  await run();
  return provider.requests.slice(before).map((r) => `${r.method} ${r.url}`);
}

describe('INTERACTION_CHECK=enforce: a request body that names another method', () => {
  // Rack::MethodOverride (Rails, Sinatra), Symfony and Laravel (http_method_override, on by
  // default in Laravel), and ASP.NET Core's UseHttpMethodOverride with a FormFieldName all
  // take a form field `_method` in a POST body as the request's method. The gateway refuses
  // `_method` in the query and every override header; a form body is the same override.
  const forms: Array<[string, string, string]> = [
    ['urlencoded', 'Content-Type: application/x-www-form-urlencoded\r\n', '_method=PUT'],
    ['urlencoded, upper case and a charset', 'Content-Type: Application/X-WWW-Form-URLEncoded; charset=utf-8\r\n', '_method=DELETE'],
    ['multipart', 'Content-Type: multipart/form-data; boundary=b\r\n', '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPUT\r\n--b--\r\n'],
    [
      'multipart, spaces around the type',
      'Content-Type:  multipart/form-data ;boundary=b\r\n',
      '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPUT\r\n--b--\r\n',
    ],
  ];

  test.each(forms)('a booking (POST /Appointment) with a %s form body is refused before any byte reaches the provider', async (_what, contentType, body) => {
    let raw = '';
    const seen = await seenDuring(async () => {
      raw = await rawExchange(gw.proxyPort, request(provider.port, 'POST', ID.create, `${ROOT}/Appointment`, contentType, body), 5000);
    });
    expect({ status: statusOf(raw), code: codeOf(raw), seen }).toEqual({ status: 400, code: 'AMBIGUOUS_PATH', seen: [] });
    // The refusal names the form, never what the body said.
    expect(raw).not.toContain('DELETE');
    expect(raw.slice(raw.indexOf('\r\n\r\n'))).not.toContain('_method=');
  });

  test('a booking with a FHIR JSON body is forwarded exactly as before', async () => {
    const body = '{"resourceType":"Appointment"}';
    let raw = '';
    const seen = await seenDuring(async () => {
      raw = await rawExchange(
        gw.proxyPort,
        request(provider.port, 'POST', ID.create, `${ROOT}/Appointment`, 'Content-Type: application/fhir+json\r\n', body),
        5000,
      );
    });
    expect(statusOf(raw)).toBe(201);
    expect(seen).toEqual([`POST ${ROOT}/Appointment`]);
  });
});

describe('INTERACTION_CHECK=enforce: variants of the booking sent as a slot search reach no provider', () => {
  test('pipelined: a right slot search, then a booking under the same ID on the same connection', async () => {
    const first = request(provider.port, 'GET', ID.slot, `${ROOT}/Slot${SLOT_QUERY}`).replace('Connection: close\r\n', '');
    const second = request(provider.port, 'POST', ID.slot, `${ROOT}/Appointment`, 'Content-Type: application/fhir+json\r\n', '{"resourceType":"Appointment"}');
    let raw = '';
    const seen = await seenDuring(async () => {
      const conn = new RawConnection(gw.proxyPort);
      await conn.whenOpen;
      conn.write(first + second);
      raw = await conn.until(() => false, 1500);
      conn.destroy();
    });
    expect(seen).toEqual([`GET ${ROOT}/Slot${SLOT_QUERY}`]);
    expect(raw).toContain('INTERACTION_MISMATCH');
  });

  const cases: Array<[string, string]> = [
    ['HTTP/1.0', request(0, 'POST', ID.slot, `${ROOT}/Appointment`, '', '{}', 'HTTP/1.0')],
    ['lower-case method', request(0, 'post', ID.slot, `${ROOT}/Slot${SLOT_QUERY}`, '', '{}')],
    ['absolute-form target', `POST http://127.0.0.1:0${ROOT}/Appointment HTTP/1.1\r\n${ssp(ID.slot)}Content-Length: 2\r\nConnection: close\r\n\r\n{}`],
    ['a percent-encoded letter', request(0, 'POST', ID.create, `${ROOT}/%41ppointment`, '', '{}')],
    ['a query that looks like a path', request(0, 'POST', ID.slot, `${ROOT}/Appointment?x=/Slot${SLOT_QUERY.replace('?', '&')}`, '', '{}')],
    ['a fragment', request(0, 'GET', ID.slot, `${ROOT}/Appointment#/Slot${SLOT_QUERY}`)],
    ['a double slash', request(0, 'POST', ID.create, `${ROOT}//Appointment`, '', '{}')],
    ['an id of 65 characters', request(0, 'PUT', ID.update, `${ROOT}/Appointment/${'a'.repeat(65)}`, '', '{}')],
    ['an id that is a dot-segment', request(0, 'GET', ID.readAppointment, `${ROOT}/Appointment/..`)],
    ['an id with a dot-segment after it', request(0, 'GET', ID.readAppointment, `${ROOT}/Appointment/1/..`)],
    [
      'GET with a chunked body as a booking',
      request(0, 'GET', ID.create, `${ROOT}/Appointment`, 'Transfer-Encoding: chunked\r\n').replace(/\r\n\r\n$/, '\r\n\r\n2\r\n{}\r\n0\r\n\r\n'),
    ],
    ['an override header', request(0, 'GET', ID.slot, `${ROOT}/Slot${SLOT_QUERY}`, 'X-HTTP-Method-Override: POST\r\n')],
    [
      'an upgrade',
      request(0, 'GET', ID.slot, `${ROOT}/Slot${SLOT_QUERY}`, 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n').replace(
        'Connection: close',
        'Connection: Upgrade',
      ),
    ],
    ['DELETE of an appointment', request(0, 'DELETE', ID.readAppointment, `${ROOT}/Appointment/1`)],
  ];

  test.each(cases)('%s', async (_what, template) => {
    const bytes = template.replace(/127\.0\.0\.1:0\//g, `127.0.0.1:${provider.port}/`);
    let raw = '';
    const seen = await seenDuring(async () => {
      raw = await rawExchange(gw.proxyPort, bytes, 5000);
    });
    expect(seen).toEqual([]);
    expect(statusOf(raw)).toBeGreaterThanOrEqual(400);
  });
});

describe("environment: a claimed ASID does not choose the record's retention", () => {
  // A record's environment sets its retention (test: AUDIT_TEST_RETENTION_DAYS, 90 days by
  // default; live: years). Over mutual TLS, a request whose certificate does not speak for
  // its Ssp-From ASID is an impersonation attempt: tagging it with the claimed test
  // consumer's environment would let its evidence age out with test traffic.
  const TEST_ASID = '200000000360';
  const BOUND_HOST = 'test-system.example.nhs.uk';
  let ca: TestCa;
  let tlsProvider: TestProvider;
  let tlsGw: RunningGateway;
  beforeAll(async () => {
    ca = TestCa.create('Attack CA');
    const server = ca.issue('gateway.test', { usage: 'server', dns: ['localhost'] });
    tlsProvider = await startProvider(providerHandler);
    tlsGw = await startGateway(
      `consumers:
  - asid: "${TEST_ASID}"
    ods: "FA565"
    environment: test
    interactions: [${METADATA}]
    certificate_fqdns: [${BOUND_HOST}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${tlsProvider.root}
        interactions: [${METADATA}]
`,
      { TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: ca.certFile, ENVIRONMENT: 'live' },
    );
  }, 60_000);
  afterAll(async () => {
    await tlsGw?.stop();
    await tlsProvider?.close();
  });

  test("a certificate for another system claiming a test consumer's ASID is refused and recorded as ENVIRONMENT's, not test", async () => {
    const other = ca.issue('live-system.example.nhs.uk', { dns: ['live-system.example.nhs.uk'] });
    const bound = ca.issue(BOUND_HOST, { dns: [BOUND_HOST] });
    const bytes = (traceId: string) =>
      `GET /${tlsProvider.root}/metadata HTTP/1.1\r\nHost: localhost\r\nSsp-TraceID: ${traceId}\r\nSsp-From: ${TEST_ASID}\r\n` +
      `Ssp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${METADATA}\r\nConnection: close\r\n\r\n`;
    const impostor = await rawExchange(tlsGw.proxyPort, bytes(randomUUID()), 5000, { ca: ca.pem, cert: other.certPem, key: other.keyPem });
    expect(statusOf(impostor)).toBe(403);
    const own = await rawExchange(tlsGw.proxyPort, bytes(randomUUID()), 5000, { ca: ca.pem, cert: bound.certPem, key: bound.keyPem });
    expect(statusOf(own)).toBe(200);
    const series = parseExposition((await getText(`http://127.0.0.1:${tlsGw.adminPort}/metrics`)).text);
    const count = (outcome: string, environment: string) =>
      [...series]
        .filter(
          ([name]) =>
            name.startsWith('spine_gateway_requests_total{') && name.includes(`outcome="${outcome}"`) && name.includes(`environment="${environment}"`),
        )
        .reduce((n, [, v]) => n + v, 0);
    expect({ deniedLive: count('denied', 'live'), deniedTest: count('denied', 'test'), forwardedTest: count('forwarded', 'test') }).toEqual({
      deniedLive: 1,
      deniedTest: 0,
      forwardedTest: 1,
    });
  }, 60_000);
  test("diagnose from a certificate for another system claiming a test consumer's ASID: answered as the real refusal, recorded as ENVIRONMENT's", async () => {
    // Diagnose's design (README "Diagnose") answers it, so an integrator with the wrong certificate learns why; its record
    // must still not be test traffic (the certificate step, which the proxy and diagnose share, sets it).
    const other = ca.issue('live-system.example.nhs.uk', { dns: ['live-system.example.nhs.uk'] });
    const bytes = `GET /_diagnose/${tlsProvider.root}/metadata HTTP/1.1\r\nHost: localhost\r\nSsp-TraceID: ${randomUUID()}\r\nSsp-From: ${TEST_ASID}\r\nSsp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${METADATA}\r\nConnection: close\r\n\r\n`;
    const before = tlsProvider.connections;
    const impostor = await rawExchange(tlsGw.proxyPort, bytes, 5000, { ca: ca.pem, cert: other.certPem, key: other.keyPem });
    expect(statusOf(impostor)).toBe(200);
    expect(JSON.parse(impostor.slice(impostor.indexOf('\r\n\r\n') + 4)).refusal.code).toBe('ASID_CHECK_FAILED_MESSAGESENDER');
    expect(tlsProvider.connections).toBe(before);
    const series = parseExposition((await getText(`http://127.0.0.1:${tlsGw.adminPort}/metrics`)).text);
    const diagnosed = (environment: string) =>
      [...series]
        .filter(
          ([name]) => name.startsWith('spine_gateway_requests_total{') && name.includes('outcome="diagnosed"') && name.includes(`environment="${environment}"`),
        )
        .reduce((n, [, v]) => n + v, 0);
    expect({ live: diagnosed('live'), test: diagnosed('test') }).toEqual({ live: 1, test: 0 });
  }, 60_000);

  test('diagnose and the real request agree on a form body: both refuse it as AMBIGUOUS_PATH', async () => {
    const bound = ca.issue(BOUND_HOST, { dns: [BOUND_HOST] });
    const tls = { ca: ca.pem, cert: bound.certPem, key: bound.keyPem };
    const bytes = (prefix: string) =>
      `POST ${prefix}${tlsProvider.root}/metadata HTTP/1.1\r\nHost: localhost\r\nSsp-TraceID: ${randomUUID()}\r\nSsp-From: ${TEST_ASID}\r\n` +
      `Ssp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${METADATA}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\nConnection: close\r\n\r\n_method=GET`;
    const diagnosed = await rawExchange(tlsGw.proxyPort, bytes('/_diagnose/'), 5000, tls);
    const answer = JSON.parse(diagnosed.slice(diagnosed.indexOf('\r\n\r\n') + 4));
    const real = await rawExchange(tlsGw.proxyPort, bytes('/'), 5000, tls);
    expect({ verdict: answer.verdict, code: answer.refusal?.code }).toEqual({ verdict: 'would_refuse', code: codeOf(real) });
    expect(codeOf(real)).toBe('AMBIGUOUS_PATH');
    expect(diagnosed).not.toContain('_method=GET');
  }, 60_000);
});

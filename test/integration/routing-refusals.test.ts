import {
  CONSUMER_ASID,
  METADATA,
  PROVIDER_ASID,
  STRUCTURED,
  TRACE_ID,
  directoryYaml,
  okHandler,
  rawExchange,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * Every way of talking the gateway into an open proxy is refused before any byte
 * reaches a provider: each case asserts the status, the Spine-style code, and that the
 * provider saw zero TCP connections. Requests go over a raw socket so no client library
 * normalises what we send.
 */
let provider: TestProvider;
let gw: RunningGateway;
let P: number;
let ROOT: string;

beforeAll(async () => {
  provider = await startProvider(okHandler());
  P = provider.port;
  ROOT = provider.root;
  gw = await startGateway(directoryYaml({ metadata: ROOT }), { MAX_REQUEST_BODY_BYTES: '1000', MAX_HEADER_BYTES: '4096' });
});
afterAll(async () => {
  await gw.stop();
  await provider.close();
});

const good: Record<string, string> = {
  'Ssp-TraceID': TRACE_ID,
  'Ssp-From': CONSUMER_ASID,
  'Ssp-To': PROVIDER_ASID,
  'Ssp-InteractionID': METADATA,
};

function requestText(method: string, target: string, headers: Record<string, string | null> = {}, extraLines: string[] = []): string {
  const merged: Record<string, string | null> = { ...good, ...headers };
  let text = `${method} ${target} HTTP/1.1\r\nHost: gateway.local\r\n`;
  for (const [name, value] of Object.entries(merged)) if (value !== null) text += `${name}: ${value}\r\n`;
  for (const line of extraLines) text += `${line}\r\n`;
  return `${text}Connection: close\r\n\r\n`;
}

function parse(raw: string): { status: number; display: string } {
  const status = Number(raw.slice(9, 12));
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  let display = '';
  try {
    display = JSON.parse(body).issue[0].details.coding[0].display;
  } catch {
    display = `<no OperationOutcome: ${body.slice(0, 80)}>`;
  }
  return { status, display };
}

type Case = [name: string, request: () => string, status: number, display: string | RegExp];
/** Origin-form target; `{root}` stands for the registered endpoint, filled in once its port is known. */
const target = (t: string) => `/${t}`;

const cases: Case[] = [
  // Where the request would go
  [
    'unregistered host',
    () => requestText('GET', target(`http://gp.evil.example/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    /^ENDPOINT_.*_VARIES_FROM_TARGETURL_http:\/\/gp\.evil\.example/,
  ],
  ['unregistered loopback host', () => requestText('GET', target(`http://127.0.0.2:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  [
    'registered host, another port',
    () => requestText('GET', target(`http://127.0.0.1:${P + 1}/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    /VARIES_FROM_TARGETURL/,
  ],
  [
    'registered host, another scheme',
    () => requestText('GET', target(`https://127.0.0.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    /VARIES_FROM_TARGETURL/,
  ],
  ['registered host, no port', () => requestText('GET', target(`http://127.0.0.1/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  ['path outside the endpoint', () => requestText('GET', target(`http://127.0.0.1:${P}/B99999/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  [
    'prefix match not at a segment boundary',
    () => requestText('GET', target(`http://127.0.0.1:${P}/A20047/STU3/1/gpconnect/fhirX/metadata`)),
    400,
    /VARIES_FROM_TARGETURL/,
  ],
  ['parent of the endpoint', () => requestText('GET', target(`http://127.0.0.1:${P}/A20047/STU3/1/gpconnect`)), 400, /VARIES_FROM_TARGETURL/],
  [
    'host suffix trick',
    () => requestText('GET', target(`http://127.0.0.1:${P}.evil.example/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    /VARIES_FROM_TARGETURL/,
  ],
  // Dot-segments, plain and percent-encoded (path form: test/integration/path-forms.test.ts has every form)
  ['dot-dot segment', () => requestText('GET', target(`{root}/../../../admin`)), 400, 'AMBIGUOUS_PATH'],
  ['dot segment', () => requestText('GET', target(`{root}/./metadata`)), 400, 'AMBIGUOUS_PATH'],
  ['trailing dot-dot', () => requestText('GET', target(`{root}/..`)), 400, 'AMBIGUOUS_PATH'],
  ['%2e%2e segment', () => requestText('GET', target(`{root}/%2e%2e/%2e%2e/admin`)), 400, 'AMBIGUOUS_PATH'],
  ['.%2E segment', () => requestText('GET', target(`{root}/.%2E/admin`)), 400, 'AMBIGUOUS_PATH'],
  ['%2E. segment', () => requestText('GET', target(`{root}/%2E./admin`)), 400, 'AMBIGUOUS_PATH'],
  ['%2e segment', () => requestText('GET', target(`{root}/%2e/metadata`)), 400, 'AMBIGUOUS_PATH'],
  ['encoded slash', () => requestText('GET', target(`{root}/..%2f..%2fadmin`)), 400, 'AMBIGUOUS_PATH'],
  ['encoded backslash', () => requestText('GET', target(`{root}/..%5c..%5cadmin`)), 400, 'AMBIGUOUS_PATH'],
  ['double-encoded dot', () => requestText('GET', target(`{root}/%252e%252e/admin`)), 400, 'AMBIGUOUS_PATH'],
  ['encoded NUL', () => requestText('GET', target(`{root}/metadata%00.json`)), 400, 'AMBIGUOUS_PATH'],
  ['broken escape', () => requestText('GET', target(`{root}/meta%zzdata`)), 400, 'AMBIGUOUS_PATH'],
  ['empty segment', () => requestText('GET', target(`{root}//metadata`)), 400, 'MISSING_OR_INVALID_HEADER'],
  // Userinfo and authority tricks
  [
    'userinfo before the registered host',
    () => requestText('GET', target(`http://user:pw@127.0.0.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    'MISSING_OR_INVALID_HEADER',
  ],
  [
    'registered host as userinfo',
    () => requestText('GET', target(`http://127.0.0.1:${P}@gp.evil.example/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    'MISSING_OR_INVALID_HEADER',
  ],
  [
    '#@ trick',
    () => requestText('GET', target(`http://gp.evil.example#@127.0.0.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    'MISSING_OR_INVALID_HEADER',
  ],
  ['fragment in the path', () => requestText('GET', target(`{root}/metadata#x`)), 400, 'MISSING_OR_INVALID_HEADER'],
  // Backslashes
  [
    'backslash in the authority',
    () => requestText('GET', target(`http://gp.evil.example\\@127.0.0.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    'MISSING_OR_INVALID_HEADER',
  ],
  ['backslash in the path', () => requestText('GET', target(`{root}\\..\\..\\admin`)), 400, 'AMBIGUOUS_PATH'],
  ['backslash in the query', () => requestText('GET', target(`{root}/metadata?x=\\y`)), 400, 'MISSING_OR_INVALID_HEADER'],
  // Alternative spellings of the registered host
  ['decimal IPv4', () => requestText('GET', target(`http://2130706433:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  ['hex IPv4', () => requestText('GET', target(`http://0x7f.0.0.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  ['octal IPv4', () => requestText('GET', target(`http://0177.0.0.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  ['short IPv4', () => requestText('GET', target(`http://127.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  [
    'IPv4-mapped IPv6 literal',
    () => requestText('GET', target(`http://[::ffff:127.0.0.1]:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)),
    400,
    /VARIES_FROM_TARGETURL/,
  ],
  ['localhost', () => requestText('GET', target(`http://localhost:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  ['trailing dot', () => requestText('GET', target(`http://127.0.0.1.:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  ['leading-zero port', () => requestText('GET', target(`http://127.0.0.1:0${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, /VARIES_FROM_TARGETURL/],
  ['upper-case scheme', () => requestText('GET', target(`HTTP://127.0.0.1:${P}/A20047/STU3/1/gpconnect/fhir/metadata`)), 400, 'MISSING_OR_INVALID_HEADER'],
  // Request-target forms
  ['absolute-form request-target', () => requestText('GET', `{root}/metadata`), 400, 'MISSING_OR_INVALID_HEADER'],
  ['relative target', () => requestText('GET', target('A20047/STU3/1/gpconnect/fhir/metadata')), 400, 'MISSING_OR_INVALID_HEADER'],
  ['asterisk-form', () => requestText('OPTIONS', '*'), 405, '405: Method Not Allowed'],
  // The Ssp-* headers
  ['Ssp-TraceID missing', () => requestText('GET', target(`{root}/metadata`), { 'Ssp-TraceID': null }), 400, 'MISSING_OR_INVALID_HEADER'],
  ['Ssp-TraceID not a GUID', () => requestText('GET', target(`{root}/metadata`), { 'Ssp-TraceID': 'trace-1' }), 400, 'MISSING_OR_INVALID_HEADER'],
  ['Ssp-From missing', () => requestText('GET', target(`{root}/metadata`), { 'Ssp-From': null }), 400, 'MISSING_OR_INVALID_HEADER'],
  ['Ssp-From not digits', () => requestText('GET', target(`{root}/metadata`), { 'Ssp-From': '20000000035x' }), 400, 'MISSING_OR_INVALID_HEADER'],
  ['Ssp-From repeated', () => requestText('GET', target(`{root}/metadata`), {}, [`Ssp-From: ${CONSUMER_ASID}`]), 400, 'MISSING_OR_INVALID_HEADER'],
  ['Ssp-To missing', () => requestText('GET', target(`{root}/metadata`), { 'Ssp-To': null }), 400, 'MISSING_OR_INVALID_HEADER'],
  ['Ssp-To not digits', () => requestText('GET', target(`{root}/metadata`), { 'Ssp-To': '9189991989 3' }), 400, 'MISSING_OR_INVALID_HEADER'],
  ['Ssp-InteractionID missing', () => requestText('GET', target(`{root}/metadata`), { 'Ssp-InteractionID': null }), 400, 'MISSING_OR_INVALID_HEADER'],
  [
    'Ssp-InteractionID not a URN',
    () => requestText('GET', target(`{root}/metadata`), { 'Ssp-InteractionID': 'read-metadata' }),
    400,
    'MISSING_OR_INVALID_HEADER',
  ],
  // The directory's decisions
  [
    'unknown consumer',
    () => requestText('GET', target(`{root}/metadata`), { 'Ssp-From': '111111111111' }),
    403,
    'ASID_CHECK_FAILED_MESSAGESENDER_111111111111',
  ],
  [
    'consumer not accredited for the interaction',
    () => requestText('GET', target(`{root}/metadata`), { 'Ssp-From': '200000000360', 'Ssp-InteractionID': STRUCTURED }),
    403,
    'ASID_CHECK_FAILED_MESSAGESENDER_200000000360',
  ],
  [
    'unknown provider',
    () => requestText('GET', target(`{root}/metadata`), { 'Ssp-To': '999999999999' }),
    403,
    'PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_999999999999',
  ],
  [
    'interaction not registered at the endpoint',
    () => requestText('GET', target(`{root}/metadata`), { 'Ssp-InteractionID': STRUCTURED }),
    403,
    `PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_${PROVIDER_ASID}`,
  ],
  [
    'no data-sharing agreement',
    () => requestText('GET', target(`{root}/metadata`), { 'Ssp-From': '200000000360' }),
    403,
    `FOT_CHECK_FAILED_MESSAGESENDER_200000000360_MESSAGERECEIVER_${PROVIDER_ASID}`,
  ],
  // Methods
  ['DELETE', () => requestText('DELETE', target(`{root}/metadata`)), 405, '405: Method Not Allowed'],
  ['TRACE', () => requestText('TRACE', target(`{root}/metadata`)), 405, '405: Method Not Allowed'],
  ['PATCH', () => requestText('PATCH', target(`{root}/metadata`)), 405, '405: Method Not Allowed'],
  // What Node's strict parser rejects, answered by the gateway
  ['NUL in a header value', () => requestText('GET', target(`{root}/metadata`), { 'X-Note': 'a\u0000b' }), 400, 'MALFORMED_HTTP_REQUEST'],
  ['bare CR in a header value', () => requestText('GET', target(`{root}/metadata`), { 'X-Note': 'a\rX-Injected: b' }), 400, 'MALFORMED_HTTP_REQUEST'],
  [
    'CR/LF in an Ssp header (header injection)',
    () => requestText('GET', target(`{root}/metadata`), { 'Ssp-To': `${PROVIDER_ASID}\r\n Host: evil` }),
    400,
    /MALFORMED_HTTP_REQUEST|MISSING_OR_INVALID_HEADER/,
  ],
  [
    'Content-Length with Transfer-Encoding',
    () => requestText('POST', target(`{root}/metadata`), {}, ['Content-Length: 5', 'Transfer-Encoding: chunked']),
    400,
    'MALFORMED_HTTP_REQUEST',
  ],
  [
    'two different Content-Lengths',
    () => requestText('POST', target(`{root}/metadata`), {}, ['Content-Length: 5', 'Content-Length: 6']),
    400,
    'MALFORMED_HTTP_REQUEST',
  ],
  ['oversized header block', () => requestText('GET', target(`{root}/metadata`), { 'X-Big': 'x'.repeat(5000) }), 431, 'REQUEST_HEADERS_TOO_LARGE'],
  ['body over the limit', () => requestText('POST', target(`{root}/metadata`), {}, ['Content-Length: 5000']), 413, 'REQUEST_BODY_TOO_LARGE'],
];

describe('routing refusals (no connection reaches the provider)', () => {
  test.each(cases)('%s', async (_name, build, status, display) => {
    const before = provider.connections;
    const raw = await rawExchange(gw.proxyPort, build().split('{root}').join(ROOT));
    const reply = parse(raw);
    expect(reply.status).toBe(status);
    if (typeof display === 'string') expect(reply.display).toBe(display);
    else expect(reply.display).toMatch(display);
    expect(raw).toMatch(/\r\nContent-Type: application\/fhir\+json; charset=utf-8\r\n/);
    expect(provider.connections).toBe(before);
    expect(provider.connections).toBe(0);
  });

  test('control: the same gateway forwards a good request (the table is not vacuous)', async () => {
    const raw = await rawExchange(gw.proxyPort, requestText('GET', `/${ROOT}/metadata`));
    expect(raw.slice(9, 12)).toBe('200');
    expect(provider.connections).toBe(1);
  });
});

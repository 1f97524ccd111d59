import { request } from 'node:http';
import {
  CONSUMER_ASID,
  METADATA,
  PROVIDER_ASID,
  freePort,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';
import { getText, parseExposition } from '../helpers/metrics-kit';

/**
 * Service management reads these counters as the truth about traffic: a known mix of
 * every kind of transaction must show up in /metrics exactly, label by label.
 */
const CLOSED_ASID = '918999198994';
let provider: TestProvider;
let closedPort: number;

function directory(root: string): string {
  return `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${METADATA}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${root}
        interactions: [${METADATA}]
  - asid: "${CLOSED_ASID}"
    ods: "B00001"
    endpoints:
      - url: http://127.0.0.1:${closedPort}/B00001/fhir
        interactions: [${METADATA}]
`;
}

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    if (req.url!.endsWith('/fail')) return void res.writeHead(503, { 'Content-Type': 'application/fhir+json' }).end('{"resourceType":"OperationOutcome"}');
    if (req.url!.endsWith('/slow') || req.url!.endsWith('/abort')) return; // never answers
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/fhir+json' }).end('x'.repeat(100)));
  });
  closedPort = await freePort(); // nothing listens there: connections are refused
});
afterAll(() => provider.close());

/** Sends a request and gives up on it after `ms`: a consumer that goes away. */
function abandon(url: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { headers: sspHeaders(), agent: false });
    req.on('error', () => resolve());
    req.end();
    setTimeout(() => (req.destroy(), resolve()), ms);
  });
}

describe('metrics agree with the traffic sent, exactly', () => {
  let gw: RunningGateway;
  afterEach(() => gw.stop());

  test('every kind of transaction, by interaction, provider, status class and outcome', async () => {
    gw = await startGateway(directory(provider.root), { UPSTREAM_TIMEOUT_MS: '1500' });
    const admin = `http://127.0.0.1:${gw.adminPort}`;
    const bodies: number[] = [];
    const expectStatus = async (status: number, url: string, init: Parameters<typeof send>[1] = { headers: sspHeaders() }) => {
      const reply = await send(url, init);
      expect(reply.status).toBe(status);
      bodies.push(reply.body.length);
    };
    for (let i = 0; i < 3; i++) await expectStatus(200, gw.url(`${provider.root}/metadata`));
    for (let i = 0; i < 2; i++)
      await expectStatus(200, gw.url(`${provider.root}/metadata`), { method: 'POST', headers: sspHeaders(), body: Buffer.alloc(1000, 1) });
    for (let i = 0; i < 2; i++) await expectStatus(503, gw.url(`${provider.root}/fail`));
    await expectStatus(504, gw.url(`${provider.root}/slow`));
    await expectStatus(502, gw.url(`http://127.0.0.1:${closedPort}/B00001/fhir/metadata`), { headers: sspHeaders({ 'Ssp-To': CLOSED_ASID }) });
    for (let i = 0; i < 3; i++) await expectStatus(403, gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': '111111111111' }) });
    await expectStatus(403, gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-To': '999999999999' }) });
    await abandon(gw.url(`${provider.root}/abort`), 100);

    // The abandoned request ends when the gateway sees its consumer go: wait for in-flight to reach 0.
    let m = new Map<string, number>();
    for (const until = Date.now() + 3000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
      m = parseExposition((await getText(`${admin}/metrics`)).text);
      if (m.get('spine_gateway_in_flight_requests') === 0) break;
    }
    const req = (provider_asid: string, status_class: string, outcome: string, interaction = METADATA) =>
      m.get(
        `spine_gateway_requests_total{interaction="${interaction}",provider_asid="${provider_asid}",status_class="${status_class}",outcome="${outcome}",environment="local"}`,
      );
    expect(req(PROVIDER_ASID, '2xx', 'forwarded')).toBe(5);
    expect(req(PROVIDER_ASID, '5xx', 'forwarded')).toBe(2);
    expect(req(PROVIDER_ASID, '5xx', 'upstream_timeout')).toBe(1);
    expect(req(CLOSED_ASID, '5xx', 'upstream_error')).toBe(1);
    expect(req(PROVIDER_ASID, '4xx', 'denied')).toBe(3);
    expect(req('other', '4xx', 'denied')).toBe(1); // an ASID the directory does not know is never a label
    expect(req(PROVIDER_ASID, '4xx', 'client_aborted')).toBe(1);
    const total = [...m].filter(([k]) => k.startsWith('spine_gateway_requests_total{')).reduce((a, [, v]) => a + v, 0);
    expect(total).toBe(14);

    expect(m.get(`spine_gateway_request_duration_seconds_count{interaction="${METADATA}"}`)).toBe(14);
    // Reached a provider (or tried to): everything but the 4 refusals.
    expect(m.get(`spine_gateway_upstream_duration_seconds_count{interaction="${METADATA}"}`)).toBe(10);
    expect(m.get('spine_gateway_overhead_seconds_count')).toBe(10);
    // A response began: the 5 OKs and 2 failures.
    expect(m.get('spine_gateway_upstream_ttfb_seconds_count')).toBe(7);
    expect(m.get('spine_gateway_upstream_failures_total{reason="ECONNREFUSED"}')).toBe(1);
    expect(m.get('spine_gateway_upstream_failures_total{reason="ETIMEDOUT"}')).toBe(1);
    const refusals = [...m].filter(([k]) => k.startsWith('spine_gateway_refusals_total{')).reduce((a, [, v]) => a + v, 0);
    expect(refusals).toBe(4);
    expect(m.get('spine_gateway_request_body_bytes_total')).toBe(2000);
    // Every byte a consumer received as a body (provider bodies and the gateway's own refusals).
    expect(m.get('spine_gateway_response_body_bytes_total')).toBe(bodies.reduce((a, b) => a + b, 0));
    expect(m.get('spine_gateway_in_flight_requests')).toBe(0);
    expect(m.get('spine_gateway_directory_reloads_total{result="success"}')).toBe(1);
    expect(m.get('spine_gateway_directory_entries{kind="providers"}')).toBe(2);
    expect(m.get('spine_gateway_directory_entries{kind="endpoints"}')).toBe(2);
    expect(Math.abs(m.get('spine_gateway_directory_last_success_timestamp_seconds')! - Date.now() / 1000)).toBeLessThan(60);
  });

  test('consumer ASID is a label only behind METRICS_CONSUMER_LABEL, and then bounded by the directory', async () => {
    gw = await startGateway(directory(provider.root), { METRICS_CONSUMER_LABEL: 'true' });
    for (let i = 0; i < 2; i++) expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': '123456789012' }) })).status).toBe(403);
    const m = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
    const series = (consumer: string, sc: string, outcome: string) =>
      m.get(
        `spine_gateway_requests_total{interaction="${METADATA}",provider_asid="${PROVIDER_ASID}",consumer_asid="${consumer}",status_class="${sc}",outcome="${outcome}",environment="local"}`,
      );
    expect(series(CONSUMER_ASID, '2xx', 'forwarded')).toBe(2);
    expect(series('other', '4xx', 'denied')).toBe(1);
    expect([...m.keys()].some((k) => k.includes('123456789012'))).toBe(false);
  });

  test('without the setting there is no consumer label at all', async () => {
    gw = await startGateway(directory(provider.root));
    await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() });
    const text = (await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text;
    expect(text).toContain('spine_gateway_requests_total{');
    expect(text).not.toContain('consumer_asid');
  });

  test('environment is a label of at most three values: test and live from the directory, else ENVIRONMENT', async () => {
    const [LIVE, TEST, PLAIN] = ['200000000401', '200000000402', '200000000403'];
    const consumer = (asid: string, environment: string) =>
      `  - asid: "${asid}"\n    ods: "C${asid.slice(-3)}"\n    interactions: [${METADATA}]\n${environment ? `    environment: ${environment}\n` : ''}`;
    gw = await startGateway(
      `consumers:\n${consumer(LIVE, 'live')}${consumer(TEST, 'test')}${consumer(PLAIN, '')}providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${provider.root}
        interactions: [${METADATA}]
`,
      { ENVIRONMENT: 'staging' },
    );
    const sendAs = async (from: string, n: number, status: number) => {
      for (let i = 0; i < n; i++) expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': from }) })).status).toBe(status);
    };
    await sendAs(LIVE, 2, 200);
    await sendAs(TEST, 3, 200);
    await sendAs(PLAIN, 1, 200);
    await sendAs('123456789012', 4, 403); // unknown to the directory: ENVIRONMENT's
    const m = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
    const series = (sc: string, outcome: string, environment: string) =>
      m.get(
        `spine_gateway_requests_total{interaction="${METADATA}",provider_asid="${PROVIDER_ASID}",status_class="${sc}",outcome="${outcome}",environment="${environment}"}`,
      );
    expect(series('2xx', 'forwarded', 'live')).toBe(2);
    expect(series('2xx', 'forwarded', 'test')).toBe(3);
    expect(series('2xx', 'forwarded', 'staging')).toBe(1);
    expect(series('4xx', 'denied', 'staging')).toBe(4);
    const values = new Set([...m.keys()].filter((k) => k.startsWith('spine_gateway_requests_total{')).map((k) => /environment="([^"]*)"/.exec(k)?.[1]));
    expect([...values].sort()).toEqual(['live', 'staging', 'test']);
  });
});

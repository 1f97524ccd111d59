import request from 'supertest';
import {
  PROVIDER_ASID,
  directoryYaml,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  waitFor,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';
import { readFileSync } from 'node:fs';

let provider: TestProvider;
let gw: RunningGateway;
let admin: string;

beforeAll(async () => {
  provider = await startProvider(okHandler());
  gw = await startGateway(directoryYaml({ metadata: provider.root }));
  admin = `http://127.0.0.1:${gw.adminPort}`;
});
afterAll(async () => {
  await gw.stop();
  await provider.close();
});

describe('admin port', () => {
  test('/healthz and /readyz', async () => {
    await request(admin).get('/healthz').expect(200, { status: 'ok' });
    const ready = await request(admin).get('/readyz').expect(200);
    expect(ready.body.checks).toEqual([
      { name: 'directory', ok: true },
      { name: 'audit', ok: true },
    ]);
    // helmet on our own responses
    expect(ready.headers['x-content-type-options']).toBe('nosniff');
  });

  test('unknown paths are 404 JSON', async () => {
    await request(admin).get('/nope').expect(404);
  });

  test('/metrics counts exactly the traffic sent, by interaction, provider, status class and outcome', async () => {
    const metadata = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
    for (let i = 0; i < 7; i++) expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    for (let i = 0; i < 3; i++)
      expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': '111111111111' }) })).status).toBe(403);
    await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-InteractionID': 'urn:made:up-by-a-consumer' }) });
    const text = (await request(admin).get('/metrics').expect(200)).text;
    expect(text).toContain(
      `spine_gateway_requests_total{interaction="${metadata}",provider_asid="${PROVIDER_ASID}",status_class="2xx",outcome="forwarded",environment="local"} 7`,
    );
    expect(text).toContain(
      `spine_gateway_requests_total{interaction="${metadata}",provider_asid="${PROVIDER_ASID}",status_class="4xx",outcome="denied",environment="local"} 3`,
    );
    expect(text).toContain(
      `spine_gateway_requests_total{interaction="other",provider_asid="${PROVIDER_ASID}",status_class="4xx",outcome="denied",environment="local"} 1`,
    );
    expect(text).not.toContain('made:up');
    // 3 unknown consumers + 1 consumer not accredited for the made-up interaction
    expect(text).toContain('spine_gateway_refusals_total{code="ASID_CHECK_FAILED_MESSAGESENDER"} 4');
    expect(text).toMatch(new RegExp(`spine_gateway_request_duration_seconds_count\\{interaction="${metadata}"\\} 10`));
    expect(text).toContain('spine_gateway_process_cpu_seconds_total');
    expect(text).toContain('spine_gateway_directory_entries{kind="providers"} 1');
  });

  test('the transaction log line holds metadata only: no target path, query, token or body', async () => {
    await send(gw.url(`${provider.root}/Patient/9000000009?identifier=canary-query-value`), {
      method: 'POST',
      headers: { ...sspHeaders({ Authorization: 'Bearer canary-token.x.' }), 'X-Ordinary': 'canary-header-value' },
      body: 'canary-body-bytes',
    });
    // The line is written when the transaction ends, which may be just after the reply reaches us.
    const postLine = () => {
      gw.gateway.log.flush();
      return readFileSync(gw.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"transaction"') && l.includes('"POST"'))
        .pop();
    };
    await waitFor(() => postLine() !== undefined, 5000, 'the transaction log line');
    const log = readFileSync(gw.logFile, 'utf8');
    const line = postLine()!;
    expect(JSON.parse(line)).toMatchObject({ method: 'POST', status: 200, outcome: 'forwarded', endpoint: provider.root, request_bytes: 17 });
    for (const canary of ['9000000009', 'canary-query-value', 'canary-token', 'canary-header-value', 'canary-body-bytes', 'Patient']) {
      expect(log).not.toContain(canary);
    }
  });
});

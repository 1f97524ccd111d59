import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  FIXTURES,
  abandonAfter,
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
import { allFileBytes, exampleJwt, searchUntil } from '../helpers/audit-kit';

/**
 * Each kind of transaction leaves exactly one audit record, with the right fields, in
 * the real embedded ClickHouse engine, found through the gateway's own search API.
 */
let provider: TestProvider;
let gw: RunningGateway;
let mode: 'ok' | 'slow' | 'stall';

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    if (mode === 'slow') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const t = setInterval(() => res.write(randomBytes(16_384)), 5);
      res.on('close', () => clearInterval(t));
      return;
    }
    if (mode === 'stall') return void req.resume();
    okHandler('{"resourceType":"Bundle"}')(req, res);
  });
  gw = await startGateway(
    directoryYaml({ metadata: provider.root }),
    { AUDIT_ENABLED: 'true', AUDIT_BATCH_MAX_AGE_MS: '50', UPSTREAM_TIMEOUT_MS: '300' },
    { store: 'inline' },
  );
});
afterAll(async () => {
  await gw?.stop();
  await provider.close();
});
beforeEach(() => {
  mode = 'ok';
});

const trace = () => randomUUID();
const byTrace = (id: string) => `trace_id=${id}`;

test("forwarded: one record with the transaction's facts and the JWT's audit claims, never the token", async () => {
  const id = trace();
  const token = exampleJwt(FIXTURES);
  const r = await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id, Authorization: `Bearer ${token}` }) });
  expect(r.status).toBe(200);
  const [row] = await searchUntil(gw.adminPort, byTrace(id), (rows) => rows.length === 1 && rows[0].outcome === 'forwarded');
  expect(row).toMatchObject({
    trace_id: id,
    consumer_asid: '200000000359',
    consumer_ods: 'FA565',
    provider_asid: '918999198993',
    provider_ods: 'A20047',
    interaction_id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
    method: 'GET',
    endpoint: provider.root,
    target_host: `127.0.0.1:${provider.port}`,
    status: 200,
    outcome: 'forwarded',
    request_bytes: 0,
    response_bytes: 25,
    client_ip: '127.0.0.1',
    jwt_requesting_organization: 'A1001',
    jwt_practitioner_id: '111222333444',
    jwt_practitioner_role: '444555666777',
    jwt_device: 'Consumer product name 5.3.0',
    jwt_reason_for_request: 'directcare',
    jwt_requested_scope: 'patient/*.read',
    environment: 'local',
  });
  expect(Number(row.duration_ms)).toBeGreaterThan(0);
  expect(Number(row.upstream_ttfb_ms)).toBeGreaterThan(0);
  expect(Number(row.upstream_connect_ms)).toBeGreaterThanOrEqual(0); // 0: a pooled connection
  expect(Number(row.upstream_connect_ms)).toBeLessThanOrEqual(Number(row.upstream_ttfb_ms));
  expect(Date.parse(String(row.completed_at))).toBeGreaterThanOrEqual(Date.parse(String(row.received_at)));
  expect(JSON.stringify(row)).not.toContain(token.split('.')[1]);
});

test('refused: one record with the stable refusal code and who asked, never the target URL', async () => {
  const id = trace();
  const token = exampleJwt(FIXTURES);
  await send(gw.url(`${provider.root}/Patient/9000000009?identifier=x`), {
    headers: sspHeaders({ 'Ssp-TraceID': id, 'Ssp-From': '111111111111', Authorization: `Bearer ${token}` }),
  });
  const [row] = await searchUntil(gw.adminPort, byTrace(id), (rows) => rows.length === 1);
  expect(row).toMatchObject({
    outcome: 'denied',
    status: 403,
    error_code: 'ASID_CHECK_FAILED_MESSAGESENDER',
    consumer_asid: '111111111111',
    jwt_practitioner_id: '111222333444',
    jwt_requesting_organization: 'A1001',
  });
  expect(JSON.stringify(row)).not.toContain('9000000009');
});

test('refused between known parties: the record names both organisations, so counts by ODS code include refusals', async () => {
  const id = trace();
  // 200000000360 (ODS NOAGREE) is accredited for metadata, but no agreement covers it and A20047.
  await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id, 'Ssp-From': '200000000360' }) });
  const [row] = await searchUntil(gw.adminPort, byTrace(id), (rows) => rows.length === 1);
  expect(row).toMatchObject({ outcome: 'denied', status: 403, error_code: 'FOT_CHECK_FAILED', consumer_ods: 'NOAGREE', provider_ods: 'A20047' });
});

test('provider timeout: one record, upstream_timeout, 504', async () => {
  mode = 'stall';
  const id = trace();
  expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }) })).status).toBe(504);
  const [row] = await searchUntil(gw.adminPort, byTrace(id), (rows) => rows.length === 1 && rows[0].outcome !== 'in_flight');
  expect(row).toMatchObject({ outcome: 'upstream_timeout', status: 504, error_code: 'UPSTREAM_TIMEOUT', failure_reason: 'ETIMEDOUT' });
});

test('provider unreachable: one record, upstream_error, 502', async () => {
  // The audited gateway's directory is switched to an endpoint nobody listens on.
  const deadRoot = `http://127.0.0.1:1/A20047/STU3/1/gpconnect/fhir`;
  writeFileSync(gw.directoryFile, directoryYaml({ metadata: deadRoot }));
  expect(gw.gateway.directory.reload('test')).toBe(true);
  const id = trace();
  expect((await send(gw.url(`${deadRoot}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }) })).status).toBe(502);
  const [row] = await searchUntil(gw.adminPort, byTrace(id), (rows) => rows.length === 1 && rows[0].outcome !== 'in_flight');
  expect(row).toMatchObject({ outcome: 'upstream_error', status: 502, error_code: 'ERROR_COMMUNICATING_TO_ENDPOINT', failure_reason: 'ECONNREFUSED' });
  writeFileSync(gw.directoryFile, directoryYaml({ metadata: provider.root }));
  expect(gw.gateway.directory.reload('test')).toBe(true);
});

test('consumer gone mid-download: one record, client_aborted', async () => {
  mode = 'slow';
  const id = trace();
  await abandonAfter(gw.url(`${provider.root}/metadata`), sspHeaders({ 'Ssp-TraceID': id }), 50_000);
  const [row] = await searchUntil(gw.adminPort, byTrace(id), (rows) => rows.length === 1 && rows[0].outcome !== 'in_flight');
  expect(row).toMatchObject({ outcome: 'client_aborted', status: 200 });
  expect(Number(row.response_bytes)).toBeGreaterThan(50_000);
});

test('search: filters, newest first, bounded pages with a cursor, clear 400s', async () => {
  const ids = [trace(), trace(), trace()];
  for (const id of ids) {
    await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id, 'Ssp-To': '999999999999' }) });
    // received_at is in milliseconds; two refusals within one would tie (and then order by event id).
    await new Promise((r) => setTimeout(r, 3));
  }
  const all = await searchUntil(gw.adminPort, 'provider_asid=999999999999&limit=1000', (rows) => rows.length === 3);
  expect(all.map((r) => r.trace_id)).toEqual([...ids].reverse());
  const page1 = JSON.parse((await send(`http://127.0.0.1:${gw.adminPort}/audit/transactions?provider_asid=999999999999&limit=2`)).body.toString());
  expect(page1.transactions).toHaveLength(2);
  const page2 = JSON.parse(
    (await send(`http://127.0.0.1:${gw.adminPort}/audit/transactions?provider_asid=999999999999&limit=2&cursor=${page1.next_cursor}`)).body.toString(),
  );
  expect(page2).toMatchObject({ next_cursor: null });
  expect(page2.transactions.map((r: { trace_id: string }) => r.trace_id)).toEqual([ids[0]]);
  expect(page2.next_cursor).toBeNull();
  const from = encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString());
  const none = JSON.parse((await send(`http://127.0.0.1:${gw.adminPort}/audit/transactions?from=${from}`)).body.toString());
  expect(none.transactions).toEqual([]);
  for (const [q, filter] of [
    ['limit=5000', 'limit'],
    ['consumer_asid=abc', 'consumer_asid'],
    ['from=yesterday', 'from'],
    ['outcome=maybe', 'outcome'],
    ["trace_id=x'%20OR%201=1--", 'trace_id'],
    ['cursor=!!', 'cursor'],
    ['sql=1', 'sql'],
  ]) {
    const r = await send(`http://127.0.0.1:${gw.adminPort}/audit/transactions?${q}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body.toString()).filter).toBe(filter);
  }
});

test('privacy: canaries in the body, query, path and ordinary headers reach neither the spool, the store, the logs, an export, a summary nor the access log', async () => {
  const id = trace();
  const canaries = ['CANARYBODY7731', 'CANARYQUERY7732', 'CANARYHEADER7733', 'CANARYPATH7734'];
  const r = await send(gw.url(`${provider.root}/Patient/${canaries[3]}?identifier=${canaries[1]}`), {
    method: 'POST',
    headers: { ...sspHeaders({ 'Ssp-TraceID': id }), 'X-Note': canaries[2], Cookie: `s=${canaries[2]}` },
    body: `{"resourceType":"Parameters","x":"${canaries[0]}"}`,
  });
  expect(r.status).toBe(200);
  await searchUntil(gw.adminPort, byTrace(id), (rows) => rows.length === 1 && rows[0].outcome === 'forwarded');
  gw.gateway.log.flush();
  for (const { path, bytes } of [...allFileBytes(`${gw.dir}/data/spool`), { path: gw.logFile, bytes: readFileSync(gw.logFile) }]) {
    for (const canary of canaries) expect({ path, found: bytes.includes(canary) }).toEqual({ path, found: false });
  }
  // The store's files are compressed, so ask the engine itself, across every column.
  for (const canary of canaries) {
    const rows = await gw.gateway.audit!.store!.queryRows<{ c: string }>(
      `SELECT count() AS c FROM ${gw.gateway.audit!.store!.table} WHERE position(toString(tuple(*)), {canary:String}) > 0`,
      { canary },
    );
    expect(Number(rows[0].c)).toBe(0);
  }
  // The investigations outputs: both export files, a summary, the access log (API and table) and its log lines.
  const admin = `http://127.0.0.1:${gw.adminPort}`;
  const outputs: Array<{ what: string; text: string }> = [];
  for (const q of [`format=csv&${byTrace(id)}`, `format=ndjson&${byTrace(id)}`, 'format=csv', 'format=ndjson']) {
    const e = await send(`${admin}/audit/transactions?${q}`);
    expect(e.status).toBe(200);
    expect(e.body.toString()).toContain(id);
    outputs.push({ what: `export ${q}`, text: e.body.toString() });
  }
  for (const g of ['interaction_id,provider_ods', 'outcome,error_code', 'consumer_ods,jwt_requesting_organization']) {
    const sum = await send(`${admin}/audit/summary?group_by=${g}&${byTrace(id)}`);
    expect(JSON.parse(sum.body.toString()).groups).toHaveLength(1);
    outputs.push({ what: `summary ${g}`, text: sum.body.toString() });
  }
  let access = '';
  await waitFor(
    async () => {
      access = (await send(`${admin}/audit/access-log?action=summary&limit=50`)).body.toString();
      return JSON.parse(access).entries.length === 3;
    },
    10_000,
    'the access log',
    100,
  );
  outputs.push({ what: 'access log', text: access });
  const table = await gw.gateway.audit!.store!.queryRows<{ t: string }>(
    `SELECT toString(tuple(*)) AS t FROM ${gw.gateway.audit!.store!.database}.access_log`,
    {},
  );
  outputs.push({ what: 'access_log table', text: table.map((t) => t.t).join('\n') });
  gw.gateway.log.flush();
  outputs.push({ what: 'log lines', text: readFileSync(gw.logFile, 'utf8') });
  for (const { what, text } of outputs) for (const canary of canaries) expect({ what, found: text.includes(canary) }).toEqual({ what, found: false });
});

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { END_FACTS, mergeEndFacts, recordIdentity } from '../../src/audit';
import { exampleToken } from '../../src/check';
import { listSegments, scanSegment } from '../../src/spool';
import { getText, parseExposition } from '../helpers/metrics-kit';
import {
  directoryYaml,
  okHandler,
  rawExchange,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  waitFor,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * The JWT check through a real gateway and a real provider (README "JWT check"): in report
 * mode every token is forwarded and its findings are recorded (the spooled audit record's
 * jwt_findings) and counted (spine_gateway_jwt_findings_total{rule}); in enforce mode a
 * token that breaks a rule is refused with 400 BAD_REQUEST naming the rules, before any
 * connection to the provider; off judges nothing.
 */
let provider: TestProvider;
let report: RunningGateway;
let enforce: RunningGateway;
let off: RunningGateway;

beforeAll(async () => {
  provider = await startProvider(okHandler());
  const directory = directoryYaml({ metadata: provider.root, structured: structuredRoot() });
  // Audit on, spool only: ClickHouse "elsewhere" refuses connections, so the records stay in the spool to be read.
  report = await startGateway(directory, { AUDIT_ENABLED: 'true', CLICKHOUSE_URL: 'http://default@127.0.0.1:9/spine_audit', AUDIT_GROUP_COMMIT_MS: '0' });
  enforce = await startGateway(directory, { JWT_CHECK: 'enforce' });
  off = await startGateway(directory, { JWT_CHECK: 'off' });
});
afterAll(async () => {
  for (const gw of [report, enforce, off]) await gw?.stop();
  await provider?.close();
});

/** The service root of the structured record interaction at the same provider (another endpoint). */
const structuredRoot = () => provider.root.replace('/gpconnect/fhir', '/gpconnect/structured/fhir');
/** A realistic token for the metadata interaction (organization/*.read) at this provider, with `override` applied. */
const good = (override: Record<string, unknown> = {}) => exampleToken({ aud: provider.root, scope: 'organization/*.read', override });
const b64 = (text: string) => Buffer.from(text).toString('base64url');

/** The issue's cases and a few claim rules: Authorization value (undefined: none) → the one finding expected. */
const CASES = (): Array<[string, string | undefined, string]> => [
  ['Bearer not-a-jwt', 'Bearer not-a-jwt', 'JWT_MALFORMED'],
  ['Bearer abc.def', 'Bearer abc.def', 'JWT_MALFORMED'],
  ['a payload that is not JSON', `Bearer ${b64('{"alg":"none","typ":"JWT"}')}.${b64('not json at all')}.`, 'JWT_MALFORMED'],
  ['Basic credentials', 'Basic dXNlcjpwYXNzd29yZA==', 'JWT_NOT_BEARER'],
  ['no Authorization header', undefined, 'JWT_MISSING'],
  ['an expired token', good({ iat: Math.floor(Date.now() / 1000) - 3600, exp: Math.floor(Date.now() / 1000) - 3300 }), 'JWT_EXPIRED'],
  ['aud another service root', good({ aud: 'https://elsewhere.example.nhs.uk/B00001/STU3/1/gpconnect/fhir' }), 'JWT_AUD_NOT_ENDPOINT'],
  ['sub not the practitioner', good({ sub: 'someone-else' }), 'JWT_SUB_MISMATCH'],
  ['a patient scope for the metadata interaction (organization/*.read)', good({ requested_scope: 'patient/*.read' }), 'JWT_SCOPE_NOT_FOR_INTERACTION'],
  ["a 9 KiB token (under MAX_HEADER_BYTES, over the check's bound)", good({ iss: `https://consumer.example/${'x'.repeat(6000)}` }), 'JWT_TOO_LARGE'],
];
const authorizationOf = (value: string | undefined) =>
  value === undefined || value.startsWith('Bearer ') || value.startsWith('Basic ') ? value : `Bearer ${value}`;

/** Every audit record in a gateway's spool, parsed. */
function spooled(gw: RunningGateway): Array<Record<string, unknown>> {
  const dir = join(gw.dir, 'data', 'spool');
  if (!existsSync(dir)) return [];
  // A final record of a forwarded request carries the end's facts only (version 3): read merged with its begin, as the store stores it.
  const begins = new Map<string, Buffer>();
  return listSegments(dir).flatMap((segment) =>
    scanSegment(dir, segment).records.map((r) => {
      const { id, version } = recordIdentity(r.payload);
      if (version === 1) begins.set(id, r.payload);
      const line = version === END_FACTS && begins.has(id) ? mergeEndFacts(begins.get(id)!, r.payload) : r.payload;
      return JSON.parse(line.toString('utf8')) as Record<string, unknown>;
    }),
  );
}
/** The final (version 2) record of one trace, once it is in the spool. */
async function finalRecord(gw: RunningGateway, traceId: string): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await waitFor(() => (found = spooled(gw).find((r) => r.trace_id === traceId && r.version === 2)) !== undefined, 5000, `the final record of ${traceId}`);
  return found!;
}

async function findingCounts(gw: RunningGateway): Promise<Map<string, number>> {
  const m = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
  const out = new Map<string, number>();
  for (const [series, value] of m) {
    const rule = /^spine_gateway_jwt_findings_total\{rule="([A-Z_0-9]+)"\}$/.exec(series)?.[1];
    if (rule) out.set(rule, value);
  }
  return out;
}

test('report (the default): the example token is forwarded with no finding and its audit claims', async () => {
  const traceId = randomUUID();
  const r = await send(report.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': traceId, Authorization: `Bearer ${good()}` }) });
  expect(r.status).toBe(200);
  const record = await finalRecord(report, traceId);
  expect(record).toMatchObject({ outcome: 'forwarded', jwt_findings: [], jwt_requesting_organization: 'A1001', jwt_requested_scope: 'organization/*.read' });
});

test('report: each broken token is forwarded, its finding recorded in jwt_findings and counted by rule', async () => {
  const before = await findingCounts(report);
  const sent = new Map<string, number>();
  for (const [what, value, code] of CASES()) {
    const traceId = randomUUID();
    const requests = provider.requests.length;
    const r = await send(report.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': traceId, Authorization: authorizationOf(value) }) });
    expect([what, r.status]).toEqual([what, 200]);
    expect(provider.requests.length).toBe(requests + 1);
    const record = await finalRecord(report, traceId);
    expect([what, record.outcome, record.jwt_findings]).toEqual([what, 'forwarded', [code]]);
    sent.set(code, (sent.get(code) ?? 0) + 1);
  }
  const after = await findingCounts(report);
  for (const [code, n] of sent) expect([code, (after.get(code) ?? 0) - (before.get(code) ?? 0)]).toEqual([code, n]);
  // Only the rules sent moved.
  for (const [code, n] of after) if (!sent.has(code)) expect([code, n]).toEqual([code, before.get(code)]);
});

test('report: the token and its claim values reach no spool record and no log beyond the audit columns', async () => {
  const canary = `canary-${randomUUID()}`;
  const traceId = randomUUID();
  const token = good({ iss: `https://${canary}.example/`, aud: `https://${canary}.example/fhir`, sub: canary });
  const r = await send(report.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': traceId, Authorization: `Bearer ${token}` }) });
  expect(r.status).toBe(200);
  const record = await finalRecord(report, traceId);
  expect(record.jwt_findings).toEqual(['JWT_SUB_MISMATCH', 'JWT_AUD_NOT_ENDPOINT']);
  const everything = JSON.stringify(spooled(report)) + (existsSync(report.logFile) ? readFileSync(report.logFile, 'utf8') : '');
  expect(everything).not.toContain(canary);
  expect(everything).not.toContain(token.split('.')[1].slice(0, 40));
});

test('enforce: each broken token is refused 400 BAD_REQUEST naming its rule, with zero provider connections', async () => {
  for (const [what, value, code] of CASES()) {
    const connections = provider.connections;
    const requests = provider.requests.length;
    const r = await send(enforce.url(`${provider.root}/metadata`), { headers: sspHeaders({ Authorization: authorizationOf(value) }) });
    const body = JSON.parse(r.body.toString('utf8'));
    expect([what, r.status, body.issue[0].details.coding[0].display]).toEqual([what, 400, 'BAD_REQUEST']);
    expect(body.issue[0].diagnostics).toContain(code);
    if (value !== undefined) expect(r.body.toString('latin1')).not.toContain(value.slice(7, 40));
    expect([what, provider.connections, provider.requests.length]).toEqual([what, connections, requests]);
  }
});

test('enforce: every rule broken is named; the good token is forwarded', async () => {
  const connections = provider.connections;
  const requests = provider.requests.length;
  const bad = good({ reason_for_request: 'curiosity', requested_scope: 'patient/*.everything', requesting_device: undefined });
  const r = await send(enforce.url(`${provider.root}/metadata`), { headers: sspHeaders({ Authorization: `Bearer ${bad}` }) });
  expect(r.status).toBe(400);
  const diagnostics: string = JSON.parse(r.body.toString('utf8')).issue[0].diagnostics;
  expect(diagnostics).toContain('JWT_REASON_INVALID, JWT_SCOPE_INVALID, JWT_DEVICE_INVALID');
  expect(diagnostics).not.toContain('curiosity');
  expect([provider.connections, provider.requests.length]).toEqual([connections, requests]);
  const ok = await send(enforce.url(`${provider.root}/metadata`), { headers: sspHeaders({ Authorization: `Bearer ${good()}` }) });
  expect(ok.status).toBe(200);
  expect(provider.requests.length).toBe(requests + 1); // on a new or a pooled connection
});

test('enforce, raw bytes: a Basic header and a body behind it are answered 400 and nothing reaches the provider', async () => {
  const connections = provider.connections;
  const lines =
    `POST /${provider.root}/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nSsp-TraceID: ${randomUUID()}\r\nSsp-From: 200000000359\r\nSsp-To: 918999198993\r\n` +
    `Ssp-InteractionID: urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1\r\nAuthorization: Basic dXNlcjpwYXNzd29yZA==\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`;
  const raw = await rawExchange(enforce.proxyPort, lines);
  expect(raw.startsWith('HTTP/1.1 400 ')).toBe(true);
  expect(raw).toContain('JWT_NOT_BEARER');
  expect(raw).not.toContain('dXNlcjpwYXNzd29yZA');
  expect(provider.connections).toBe(connections);
});

test('off: nothing judged, nothing counted, the broken token forwarded', async () => {
  const r = await send(off.url(`${provider.root}/metadata`), { headers: sspHeaders({ Authorization: 'Bearer not-a-jwt' }) });
  expect(r.status).toBe(200);
  expect((await findingCounts(off)).size).toBe(0);
});

test('a repeated Authorization header is refused: the record and the check must judge the token the provider acts on', async () => {
  // Node (and most stacks) take the first of two Authorization lines; the gateway read the last. A consumer could
  // then be audited (and checked) as one user while the provider acted for another.
  const requests = provider.requests.length;
  const traceId = randomUUID();
  const head =
    `GET /${provider.root}/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nSsp-TraceID: ${traceId}\r\nSsp-From: 200000000359\r\nSsp-To: 918999198993\r\n` +
    `Ssp-InteractionID: urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1\r\n` +
    `Authorization: Bearer ${good({ sub: 'other', requesting_practitioner: undefined })}\r\nAuthorization: Bearer ${good()}\r\nConnection: close\r\n\r\n`;
  for (const gw of [report, enforce, off]) {
    const raw = await rawExchange(gw.proxyPort, head);
    expect(raw.startsWith('HTTP/1.1 400 ')).toBe(true);
    expect(raw).toContain('Authorization');
  }
  expect(provider.requests.length).toBe(requests);
  expect((await finalRecord(report, traceId)).outcome).toBe('denied');
});

test('the token is decoded once per request: one JSON.parse of its payload for the record and the check together', async () => {
  const marker = `marker-${randomUUID()}`;
  const parse = jest.spyOn(JSON, 'parse');
  try {
    const traceId = randomUUID();
    const r = await send(report.url(`${provider.root}/metadata`), {
      headers: sspHeaders({ 'Ssp-TraceID': traceId, Authorization: `Bearer ${good({ jti: marker })}` }),
    });
    expect(r.status).toBe(200);
    await finalRecord(report, traceId);
    expect(parse.mock.calls.filter(([text]) => typeof text === 'string' && text.includes(marker))).toHaveLength(1);
  } finally {
    parse.mockRestore();
  }
});

test("the interaction's scope, from INTERACTIONS_FILE: the structured record wants patient/*.read, conf/* aside; write does not include read", async () => {
  const structured = 'urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1';
  const post = (gw: RunningGateway, scope: string, traceId = randomUUID()) =>
    send(gw.url(`${structuredRoot()}/Patient/$gpc.getstructuredrecord`), {
      method: 'POST',
      headers: {
        ...sspHeaders({ 'Ssp-TraceID': traceId, 'Ssp-InteractionID': structured, Authorization: `Bearer ${exampleToken({ aud: structuredRoot(), scope })}` }),
        'Content-Type': 'application/fhir+json',
      },
      body: '{"resourceType":"Parameters"}',
    });
  for (const [scope, findings] of [
    ['patient/*.read conf/R', []],
    ['patient/*.read', []],
    ['patient/*.write', ['JWT_SCOPE_NOT_FOR_INTERACTION']],
    ['organization/*.read conf/N', ['JWT_SCOPE_NOT_FOR_INTERACTION']],
  ] as const) {
    const traceId = randomUUID();
    expect([scope, (await post(report, scope, traceId)).status]).toEqual([scope, 200]);
    expect([scope, (await finalRecord(report, traceId)).jwt_findings]).toEqual([scope, findings]);
    const requests = provider.requests.length;
    const enforced = await post(enforce, scope);
    expect([scope, enforced.status]).toEqual([scope, findings.length === 0 ? 200 : 400]);
    expect(provider.requests.length).toBe(requests + (findings.length === 0 ? 1 : 0));
  }
});

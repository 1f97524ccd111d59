import { randomUUID } from 'node:crypto';
import { recordHashSql } from '../../src/seal';
import { exampleJwt, searchUntil } from '../helpers/audit-kit';
import {
  FIXTURES,
  METADATA,
  PROVIDER_ASID,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * Test and live apart (README: "Retention"), end to end: a real gateway with the embedded
 * engine, requests of a test consumer (directory `environment: test`), a live one, one
 * whose entry names none and an unknown ASID; their records go through the spool and the
 * shipper to ClickHouse, each with its consumer's environment (ENVIRONMENT for the last
 * two), sealed with the environment in its hash.
 */
const TEST_ASID = '200000000359';
const LIVE_ASID = '200000000361';
const PLAIN_ASID = '200000000362';
let provider: TestProvider;
let gw: RunningGateway;

function directory(root: string): string {
  return `consumers:
  - asid: "${TEST_ASID}"
    ods: "FA565"
    environment: test
    interactions: [${METADATA}]
  - asid: "${LIVE_ASID}"
    ods: "FA566"
    environment: live
    interactions: [${METADATA}]
  - asid: "${PLAIN_ASID}"
    ods: "FA567"
    interactions: [${METADATA}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${root}
        interactions: [${METADATA}]
agreements:
  - id: NDSA
    consumers: ["FA565", "FA566", "FA567"]
    providers: "*"
`;
}

beforeAll(async () => {
  provider = await startProvider(okHandler('{"resourceType":"CapabilityStatement"}'));
  gw = await startGateway(directory(provider.root), { AUDIT_ENABLED: 'true', AUDIT_BATCH_MAX_AGE_MS: '50', ENVIRONMENT: 'staging' }, { store: 'inline' });
});
afterAll(async () => {
  await gw?.stop();
  await provider.close();
});

test("each record carries its consumer's environment, forwarded or refused, and its hash covers it", async () => {
  const token = exampleJwt(FIXTURES);
  const cases = [
    { from: TEST_ASID, to: PROVIDER_ASID, status: 200, environment: 'test' },
    { from: LIVE_ASID, to: PROVIDER_ASID, status: 200, environment: 'live' },
    { from: PLAIN_ASID, to: PROVIDER_ASID, status: 200, environment: 'staging' },
    { from: '111111111111', to: PROVIDER_ASID, status: 403, environment: 'staging' }, // not in the directory
    { from: TEST_ASID, to: '999999999999', status: 403, environment: 'test' }, // refused: an unknown provider
    { from: LIVE_ASID, to: '999999999999', status: 403, environment: 'live' },
  ].map((c) => ({ ...c, trace: randomUUID() }));
  for (const c of cases) {
    const r = await send(gw.url(`${provider.root}/metadata`), {
      headers: sspHeaders({ 'Ssp-TraceID': c.trace, 'Ssp-From': c.from, 'Ssp-To': c.to, Authorization: `Bearer ${token}` }),
    });
    expect({ trace: c.trace, status: r.status }).toEqual({ trace: c.trace, status: c.status });
  }
  for (const c of cases) {
    const [row] = await searchUntil(gw.adminPort, `trace_id=${c.trace}`, (rows) => rows.length === 1 && rows[0].outcome !== 'in_flight');
    expect({ from: c.from, environment: row.environment }).toEqual({ from: c.from, environment: c.environment });
  }
  // Sealed with the environment in the hash: ClickHouse's recomputation over the stored row agrees.
  const store = gw.gateway.audit!.store!;
  const rows = await store.queryRows<{ trace_id: string; environment: string; record_hash: string; computed: string }>(
    `SELECT trace_id, environment, record_hash, ${recordHashSql()} AS computed FROM ${store.table} FINAL WHERE version = 2 AND has({traces:Array(String)}, trace_id)`,
    { traces: cases.map((c) => c.trace) },
  );
  expect(rows).toHaveLength(cases.length);
  for (const r of rows) {
    expect(r.record_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(r.computed).toBe(r.record_hash);
  }
});

import {
  CONSUMER_ASID,
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
import { getText, parseExposition } from '../helpers/metrics-kit';
import { searchUntil } from '../helpers/audit-kit';

const OTHER_CONSUMER = '200000000360';

function directory(root: string, consumerLimit: string, providerLimit = ''): string {
  return `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${METADATA}]
${consumerLimit}
  - asid: "${OTHER_CONSUMER}"
    ods: "FA566"
    interactions: [${METADATA}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
${providerLimit}
    endpoints:
      - url: ${root}
        interactions: [${METADATA}]
`;
}

/**
 * The rate limiter's clock is performance.now(). Jest fakes that one API in these tests
 * and leaves timers, Date and nextTick real, so sockets, servers and the audit pipeline run
 * as ever: the limiter's time stands still during a burst (no token comes back mid-burst
 * however slow the machine) and moves only when a test moves it, instead of a sleep.
 * The limiter's arithmetic is tested on its own in test/unit/limit/rate-limiter.test.ts.
 */
const ALL_BUT_PERFORMANCE = [
  'Date',
  'hrtime',
  'nextTick',
  'queueMicrotask',
  'setImmediate',
  'clearImmediate',
  'setInterval',
  'clearInterval',
  'setTimeout',
  'clearTimeout',
] as const;

let provider: TestProvider;
let gw: RunningGateway;
beforeAll(async () => {
  provider = await startProvider(okHandler());
});
afterAll(() => provider.close());
beforeEach(() => {
  jest.useFakeTimers({ doNotFake: [...ALL_BUT_PERFORMANCE] });
});
afterEach(async () => {
  await gw.stop();
  jest.useRealTimers();
});

async function burst(n: number, from = CONSUMER_ASID): Promise<Array<Awaited<ReturnType<typeof send>>>> {
  return Promise.all(Array.from({ length: n }, () => send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': from }) })));
}

describe('rate limits', () => {
  test("a burst over a consumer's limit gets exactly the expected 429s, each with Retry-After, audited and counted", async () => {
    // 0.5/s refills one token in 2 s, and the limiter's clock stands still: none comes back.
    gw = await startGateway(directory(provider.root, '    rate_limit: { per_second: 0.5, burst: 5 }'), { AUDIT_ENABLED: 'true' });
    const before = provider.requests.length;
    const replies = await burst(12);
    const refused = replies.filter((r) => r.status === 429);
    expect(replies.filter((r) => r.status === 200).length).toBe(5);
    expect(refused.length).toBe(7);
    expect(provider.requests.length - before).toBe(5); // nothing refused reached the provider
    for (const r of refused) {
      expect(r.headers['retry-after']).toMatch(/^[12]$/);
      expect(r.headers['content-type']).toContain('application/fhir+json');
      const outcome = JSON.parse(r.body.toString());
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0].code).toBe('throttled');
      expect(outcome.issue[0].details.coding[0].display).toBe('RATE_LIMITED');
    }
    // Another consumer has its own bucket.
    expect((await burst(3, OTHER_CONSUMER)).every((r) => r.status === 200)).toBe(true);
    const m = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
    expect(m.get('spine_gateway_refusals_total{code="RATE_LIMITED"}')).toBe(7);
    const rows = await searchUntil(gw.adminPort, `consumer_asid=${CONSUMER_ASID}&outcome=denied`, (rs) => rs.length === 7);
    expect(rows.every((r) => r.error_code === 'RATE_LIMITED' && r.status === 429)).toBe(true);
  });

  test("a provider's limit (a setting's default) protects it from all consumers together", async () => {
    gw = await startGateway(directory(provider.root, ''), { RATE_LIMIT_PROVIDER_PER_SECOND: '0.5', RATE_LIMIT_PROVIDER_BURST: '4' });
    const a = await burst(3);
    const b = await burst(3, OTHER_CONSUMER);
    const statuses = [...a, ...b].map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBe(4);
    expect(statuses.filter((s) => s === 429).length).toBe(2);
    const diag = JSON.parse([...a, ...b].find((r) => r.status === 429)!.body.toString()).issue[0].diagnostics;
    expect(diag).toContain(`provider ASID ${PROVIDER_ASID}`);
  });

  test('the bucket refills: after Retry-After a request passes again', async () => {
    gw = await startGateway(directory(provider.root, '    rate_limit: { per_second: 20, burst: 2 }'));
    const first = await burst(3);
    expect(first.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    const retryAfter = Number(first.find((r) => r.status === 429)!.headers['retry-after']);
    expect(retryAfter).toBe(1); // 20/s: a token every 50 ms, said in whole seconds
    jest.advanceTimersByTime(40); // 0.8 of a token: not yet
    expect((await burst(1))[0].status).toBe(429);
    jest.advanceTimersByTime(retryAfter * 1000);
    expect((await burst(1))[0].status).toBe(200);
  });
});

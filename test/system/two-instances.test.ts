import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { balancedLoad, type Attempt, type BalancedLoad } from '../helpers/balanced-load';
import { metric, runGateway, type ChildGateway } from '../helpers/child-gateway';
import { clickhouseServer, createOldServerSchema, type ClickHouseServer } from '../helpers/clickhouse-server';
import { fileSeals } from '../helpers/seal-kit';
import { directoryYaml, freePort, send, startProvider, tempDir, waitFor, type TestProvider } from '../helpers/test-kit';

/**
 * Two gateway instances, as behind a load balancer (their own DATA_DIR, their own ports),
 * inserting into ONE ClickHouse server (Debian's 18.16, schema management off). Under
 * load spread over both: one instance is killed with SIGKILL and later restarted on its
 * DATA_DIR, and the server is killed (SIGKILL) for a few seconds. Every record whose reply the
 * consumer got arrives exactly once; the surviving instance never fails a request; verify
 * on each instance finds both seal chains (one per DATA_DIR) intact.
 */
let provider: TestProvider;
let ch: ClickHouseServer;
/** Trace IDs that reached the provider: a request killed in flight after this has a durable in-flight record. */
const reachedProvider = new Set<string>();

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    reachedProvider.add(String(req.headers['ssp-traceid']));
    // Some transactions last long enough to be caught in flight by the SIGKILL.
    setTimeout(() => res.end('{}'), Math.random() < 0.2 ? 150 : 2);
  });
  ch = await clickhouseServer(tempDir('two-instances-ch-'));
  await ch.start();
  await createOldServerSchema(ch);
}, 60_000);
afterAll(async () => {
  await ch?.stop();
  await provider?.close();
});

interface Instance {
  readonly name: string;
  readonly dataDir: string;
  readonly proxyPort: number;
  readonly adminPort: number;
}

async function instance(name: string): Promise<Instance> {
  return { name, dataDir: join(tempDir(`two-instances-${name}-`), 'data'), proxyPort: await freePort(), adminPort: await freePort() };
}

/** One shared signing key, as the Kubernetes manifests mount it from one Secret: the chains differ by DATA_DIR only. */
function sharedSigningKey(): string {
  const file = join(tempDir('two-instances-key-'), 'signing.pem');
  writeFileSync(file, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return file;
}

const answeredBy = (attempts: readonly Attempt[], backend: string) => attempts.filter((a) => a.backend === backend && a.status !== 0).length;

type ChainVerdict = { chain: string; instance: string; status: string; periods_checked: number; records_checked: number; records_unsealed: number };
type Verdict = {
  status: string;
  periods_checked: number;
  records_checked: number;
  records_unsealed: number;
  records_in_flight: number;
  chains: ChainVerdict[];
  first_break: unknown;
};

async function verify(adminPort: number): Promise<Verdict> {
  const r = await send(`http://127.0.0.1:${adminPort}/audit/verify`);
  if (r.status !== 200) throw new Error(`verify answered ${r.status}: ${r.body.toString().slice(0, 200)}`);
  return JSON.parse(r.body.toString()) as Verdict;
}

async function tsv(query: string): Promise<string[][]> {
  return (await ch.sql(`${query} FORMAT TabSeparated`))
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

test('two instances, one ClickHouse: an instance SIGKILLed and a server outage under load lose and double nothing; both chains verify intact', async () => {
  const keyFile = sharedSigningKey();
  const [a, b] = [await instance('a'), await instance('b')];
  const start = (i: Instance) =>
    runGateway(directoryYaml({ metadata: provider.root }), {
      DATA_DIR: i.dataDir,
      PORT: String(i.proxyPort),
      ADMIN_PORT: String(i.adminPort),
      CLICKHOUSE_URL: ch.url,
      AUDIT_SCHEMA_MANAGEMENT: 'false',
      AUDIT_FAILURE_MODE: 'closed',
      AUDIT_SIGNING_KEY_FILE: keyFile,
      AUDIT_SEAL_PERIOD_MS: '1000',
      AUDIT_BATCH_MAX_AGE_MS: '100',
      LOG_LEVEL: 'info',
    });
  const running: ChildGateway[] = [];
  let load: BalancedLoad | null = null;
  try {
    const gwA = await start(a);
    const gwB = await start(b);
    running.push(gwA, gwB);
    // 'a-restarted' is instance a again (same DATA_DIR, same ports) once it is back: a name of its own
    // keeps its requests apart from those the kill cut off.
    load = balancedLoad(
      [
        { name: 'a', proxyPort: a.proxyPort },
        { name: 'b', proxyPort: b.proxyPort },
        { name: 'a-restarted', proxyPort: a.proxyPort },
      ],
      `${provider.root}/metadata`,
      { concurrency: 8, maxRequests: 6000, outOfRotation: ['a-restarted'] },
    );
    const { attempts } = load;
    const phase = async (what: string, done: () => boolean | Promise<boolean>) => waitFor(done, 30_000, what, 50);

    // Both serve.
    await phase('both instances answering', () => answeredBy(attempts, 'a') >= 100 && answeredBy(attempts, 'b') >= 100);

    // Instance a dies mid-load: the balancer's health check takes it out, its in-flight requests are cut off.
    load.setInRotation('a', false);
    gwA.kill('SIGKILL');
    await gwA.exited;
    const bBeforeOutage = answeredBy(attempts, 'b');
    await phase('b alone answering', () => answeredBy(attempts, 'b') >= bBeforeOutage + 100);

    // ClickHouse dies (SIGKILL: inserts under way are cut off, and retried) for a few seconds; a comes back on its DATA_DIR during the outage (its recovery cannot ship yet).
    const outageStarted = Date.now();
    await ch.kill();
    const serverStoppedMs = Date.now() - outageStarted;
    const gwA2 = await start(a);
    const aRestartedMs = Date.now() - outageStarted;
    running.push(gwA2);
    load.setInRotation('a-restarted', true);
    await phase('the outage seen, a back and answering', async () => {
      if (Date.now() - outageStarted < 3000 || answeredBy(attempts, 'a-restarted') < 100) return false;
      return (await metric(gwB, 'spine_gateway_clickhouse_up')) === 0 && (await metric(gwA2, 'spine_gateway_clickhouse_up')) === 0;
    });
    const transientFailuresB = await metric(gwB, 'spine_gateway_audit_insert_failures_total{kind="transient"}');
    const pendingDuringOutage = (await metric(gwB, 'spine_gateway_audit_records_pending')) + (await metric(gwA2, 'spine_gateway_audit_records_pending'));
    const outageMs = Date.now() - outageStarted;

    await ch.start();
    const afterOutage = attempts.length;
    await phase('traffic after the outage', () => attempts.length >= afterOutage + 200);
    await load.stop();

    // Requests to the surviving instance, and to a once restarted, never fail; only those in flight on a when it was killed may.
    const byBackend = (name: string) => attempts.filter((t) => t.backend === name);
    expect(byBackend('b').filter((t) => t.status !== 200)).toEqual([]);
    expect(byBackend('a-restarted').filter((t) => t.status !== 200)).toEqual([]);
    const cutOff = byBackend('a').filter((t) => t.status !== 200);
    expect(cutOff.every((t) => t.status === 0)).toBe(true);
    expect(cutOff.length).toBeLessThanOrEqual(8); // at most one request per load loop was in flight
    expect(transientFailuresB).toBeGreaterThan(0);
    expect(pendingDuringOutage).toBeGreaterThan(0);

    // The backlog drains: every answered request, and every cut-off one that reached the provider, is stored.
    const answered = attempts.filter((t) => t.status === 200);
    const cutOffReached = cutOff.filter((t) => reachedProvider.has(t.traceId));
    const expected = new Set([...answered, ...cutOffReached].map((t) => t.traceId));
    const rowsByTrace = async () =>
      new Map(
        (await tsv('SELECT trace_id, count(), any(outcome), any(status) FROM spine_audit.transactions FINAL GROUP BY trace_id')).map(
          ([id, n, outcome, status]) => [id, { n: Number(n), outcome, status: Number(status) }],
        ),
      );
    let rows = await rowsByTrace();
    await waitFor(
      async () => {
        if ((await metric(gwB, 'spine_gateway_audit_records_pending')) !== 0 || (await metric(gwA2, 'spine_gateway_audit_records_pending')) !== 0) return false;
        rows = await rowsByTrace();
        return [...expected].every((id) => rows.has(id)) && [...rows.values()].every((r) => r.outcome !== 'in_flight');
      },
      60_000,
      'both backlogs drained',
      250,
    ).catch(() => undefined); // the assertions below name what is missing
    expect([...expected].filter((id) => !rows.has(id))).toEqual([]);
    expect([...rows.entries()].filter(([, r]) => r.n !== 1)).toEqual([]);
    const sent = new Set(attempts.map((t) => t.traceId));
    expect([...rows.keys()].filter((id) => !sent.has(id))).toEqual([]);
    for (const t of answered) expect({ trace: t.traceId, ...rows.get(t.traceId) }).toEqual({ trace: t.traceId, n: 1, outcome: 'forwarded', status: 200 });
    const interrupted = cutOffReached.filter((t) => rows.get(t.traceId)!.outcome === 'interrupted').length;
    for (const t of cutOffReached) expect(['interrupted', 'forwarded']).toContain(rows.get(t.traceId)!.outcome);

    // Two chains, one per DATA_DIR (each instance's seal file holds its own).
    const chainOf = (i: Instance) => [...new Set(fileSeals(i.dataDir).map((s) => s.chain))];
    const [chainA, chainB] = [chainOf(a), chainOf(b)];
    expect(chainA).toHaveLength(1);
    expect(chainB).toHaveLength(1);
    expect(chainA[0]).not.toBe(chainB[0]);

    // Verify on each instance: both chains listed, each with its own records, both intact, once every seal is in.
    const perChain = async () =>
      new Map((await tsv('SELECT seal_chain, count() FROM spine_audit.transactions FINAL WHERE seq > 0 GROUP BY seal_chain')).map(([c, n]) => [c, Number(n)]));
    const stored = await perChain();
    expect([...stored.keys()].sort()).toEqual([chainA[0], chainB[0]].sort());
    expect(stored.get(chainA[0])! + stored.get(chainB[0])!).toBe(rows.size);
    const verdicts: Record<string, Verdict> = {};
    for (const [name, adminPort] of [
      ['b', b.adminPort],
      ['a', a.adminPort],
    ] as const) {
      let last: Verdict | null = null;
      await waitFor(
        async () => {
          last = await verify(adminPort);
          return last.status === 'intact' && last.records_unsealed === 0 && last.chains.every((c) => c.records_checked === stored.get(c.chain));
        },
        45_000,
        `verify on ${name}: every record sealed and judged`,
        250,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last verify: ${JSON.stringify(last)}`);
      });
      verdicts[name] = last!;
    }
    for (const v of Object.values(verdicts)) {
      expect(v).toMatchObject({ status: 'intact', first_break: null, records_unsealed: 0, records_in_flight: 0, records_checked: rows.size });
      // Both chains listed, told apart by their ID: the instance name (hostname()) is the same for both here.
      expect(
        v.chains.map((c) => ({ chain: c.chain, instance: c.instance, status: c.status, records: c.records_checked, unsealed: c.records_unsealed })),
      ).toEqual([chainA[0], chainB[0]].sort().map((chain) => ({ chain, instance: hostname(), status: 'intact', records: stored.get(chain), unsealed: 0 })));
      expect(v.chains.every((c) => c.periods_checked > 0)).toBe(true);
    }
    const seals = await tsv('SELECT chain, count(), groupUniqArray(instance) FROM spine_audit.audit_seals FINAL GROUP BY chain ORDER BY chain');
    expect(seals.map(([c]) => c)).toEqual([chainA[0], chainB[0]].sort());
    for (const [, , instances] of seals) expect(instances).toBe(`['${hostname()}']`);

    process.stdout.write(
      `two instances: ${attempts.length} requests (${answeredBy(attempts, 'a')} to a before the kill, ${answeredBy(attempts, 'b')} to b, ` +
        `${answeredBy(attempts, 'a-restarted')} to a restarted), ${cutOff.length} cut off by the SIGKILL (${cutOffReached.length} reached the provider, ` +
        `${interrupted} stored interrupted); outage ${outageMs} ms (server stopped after ${serverStoppedMs} ms, a restarted after ${aRestartedMs} ms), ${transientFailuresB} failed inserts on b; ${rows.size} records, ` +
        `chain a ${stored.get(chainA[0])}, chain b ${stored.get(chainB[0])}; verify on each: both chains intact, ${verdicts.b.periods_checked} periods\n`,
    );
  } finally {
    await load?.stop();
    for (const gw of running) {
      if (gw.child.exitCode === null && gw.child.signalCode === null) {
        gw.kill('SIGTERM');
        await gw.exited;
      }
    }
  }
}, 150_000);

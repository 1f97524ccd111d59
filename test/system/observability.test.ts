import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { exportedNames, getText } from '../helpers/metrics-kit';
import { promtool, startPrometheus, type PrometheusServer } from '../helpers/prometheus-server';
import {
  REPO,
  TRACE_ID,
  directoryYaml,
  eventually,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * The dashboards, alert rules and scrape config ship in the repository; these tests keep
 * them from rotting: promtool on the rules and on a live scrape, the rules' own unit
 * tests, a real Prometheus scraping a gateway under known traffic, every PromQL
 * expression evaluated by that Prometheus and naming only metrics the gateway exports,
 * and every SQL query of the audit explorer run on the embedded engine with the real schema.
 */
const DASHBOARDS = ['traffic-overview', 'audit-pipeline', 'audit-explorer'].map((name) => ({
  name,
  json: JSON.parse(readFileSync(join(REPO, 'dashboards', `${name}.json`), 'utf8')) as Dashboard,
}));

interface Target {
  datasource: { uid: string };
  expr?: string;
  rawSql?: string;
}
interface Panel {
  title: string;
  datasource: { uid: string };
  targets: Target[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; datasource?: { uid: string }; definition?: string }> };
}

function targets(ds: string): Array<{ where: string; target: Target }> {
  return DASHBOARDS.flatMap(({ name, json }) =>
    json.panels.flatMap((p) => p.targets.filter((t) => t.datasource.uid === ds).map((target) => ({ where: `${name}: ${p.title}`, target }))),
  );
}
const ruleExprs = (): Array<{ where: string; expr: string }> =>
  (
    parseYaml(readFileSync(join(REPO, 'dashboards', 'prometheus', 'alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    }
  ).groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert}`, expr: r.expr })));

/** Grafana's variables, as Grafana would substitute them for a whole-range, all-values view. */
function promqlAsGrafanaSends(expr: string): string {
  const out = expr
    .replace(/\$__rate_interval|\$__interval/g, '1m')
    .replace(/\$__range/g, '1h')
    .replace(/\$interaction/g, '.*');
  expect(out).not.toContain('$');
  return out;
}

/** The ClickHouse plugin's macros, expanded as the plugin does (v4), for the last day. */
function sqlAsPluginSends(sql: string, traceId: string): string {
  const to = Math.floor(Date.now() / 1000) + 60;
  const from = to - 86_400;
  const out = sql
    .replace(/\$__timeFilter\(([\w.]+)\)/g, `$1 >= toDateTime(${from}) AND $1 <= toDateTime(${to})`)
    .replace(/\$__timeInterval\(([\w.]+)\)/g, 'toStartOfInterval(toDateTime($1), INTERVAL 60 second)')
    .replace(/\$\{trace_id:sqlstring\}/g, `'${traceId}'`);
  expect(out).not.toContain('$');
  return out;
}

describe('the trial stack (docker-compose.yml, not run here)', () => {
  test('every file it mounts exists in the repository, and Prometheus and Grafana get the files the tests check', () => {
    const dir = join(REPO, 'dashboards');
    const compose = parseYaml(readFileSync(join(dir, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { volumes?: string[]; build?: string }> };
    const mounts = Object.values(compose.services).flatMap((svc) => (svc.volumes ?? []).filter((v) => v.startsWith('.')).map((v) => v.split(':')[0]));
    expect(mounts.length).toBeGreaterThan(8);
    for (const source of mounts) expect(existsSync(join(dir, source))).toBe(true);
    expect(mounts).toEqual(
      expect.arrayContaining([
        './prometheus/alerts.yml',
        './prometheus/prometheus.yml',
        './provisioning/datasources.yml',
        ...DASHBOARDS.map((d) => `./${d.name}.json`),
      ]),
    );
    expect(existsSync(join(dir, compose.services.gateway.build!, 'Dockerfile'))).toBe(true);
    // The gateway's named volume holds the image's DATA_DIR (spool and dead letters survive a restart).
    const dataDir = /DATA_DIR=(\S+)/.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))![1];
    expect(compose.services.gateway.volumes).toContain(`gateway-data:${dataDir}`);
    // The scrape config names the job the rules and dashboards select on.
    const scrape = parseYaml(readFileSync(join(dir, 'prometheus', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ job_name: string }>;
      rule_files: string[];
    };
    expect(scrape.scrape_configs.map((c) => c.job_name)).toEqual(['spine-gateway']);
    expect(scrape.rule_files).toEqual(['alerts.yml']);
  });
});

describe('alert rules (promtool)', () => {
  test('promtool check rules accepts the rules file', () => {
    const run = promtool(['check', 'rules', 'alerts.yml']);
    expect(run.output).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });

  test('promtool test rules: the key alerts fire and stay quiet as they should', () => {
    const run = promtool(['test', 'rules', 'alerts.test.yml']);
    expect(run.output).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });

  test('every alert has a runbook entry in the README', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    for (const { where } of ruleExprs()) expect(readme).toContain(`#### ${where.replace('rule ', '')}`);
  });
});

describe('against a live gateway and a real Prometheus', () => {
  let provider: TestProvider;
  let gw: RunningGateway;
  let prometheus: PrometheusServer;
  let live: string;

  beforeAll(async () => {
    provider = await startProvider(okHandler());
    gw = await startGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', AUDIT_BATCH_MAX_AGE_MS: '50' }, { store: 'inline' });
    prometheus = await startPrometheus([`127.0.0.1:${gw.adminPort}`]);
    // Known traffic: 20 forwarded, 5 refused (unknown consumer).
    for (let i = 0; i < 20; i++) expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    for (let i = 0; i < 5; i++)
      expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-From': '111111111111' }) })).status).toBe(403);
    const audit = gw.gateway.audit!;
    await eventually(() => audit.stats.shipped() >= 25, 15_000, 'the audit records to reach the embedded engine');
    live = (await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text;
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    await gw?.stop();
    await provider?.close();
  });

  test('promtool check metrics finds nothing to fix in a live scrape', () => {
    const run = promtool(['check', 'metrics'], live);
    expect(run.output.trim()).toBe('');
    expect(run.status).toBe(0);
  });

  test('Prometheus scrapes the gateway and PromQL returns exactly the requests sent', async () => {
    let value = '';
    await eventually(
      () => {
        void prometheus.query('sum(spine_gateway_requests_total{job="spine-gateway"})').then((r) => (value = r.data?.result[0]?.value[1] ?? ''));
        return value === '25';
      },
      20_000,
      'Prometheus to have scraped 25 requests',
    );
    const denied = await prometheus.query('sum(spine_gateway_requests_total{job="spine-gateway",outcome="denied"})');
    expect(denied.data!.result[0].value[1]).toBe('5');
    const up = await prometheus.query('up{job="spine-gateway"}');
    expect(up.data!.result[0].value[1]).toBe('1');
  }, 30_000);

  test('every PromQL expression in the dashboards and rules evaluates in Prometheus and names only exported metrics', async () => {
    const exported = exportedNames(live);
    const exprs = [
      ...targets('prometheus').map(({ where, target }) => ({ where, expr: target.expr! })),
      ...ruleExprs(),
      ...DASHBOARDS.flatMap(({ name, json }) =>
        json.templating.list.filter((v) => v.datasource?.uid === 'prometheus').map((v) => ({ where: `${name}: $${v.name}`, expr: v.definition! })),
      ),
    ];
    expect(exprs.length).toBeGreaterThan(40);
    for (const { where, expr } of exprs) {
      for (const name of expr.match(/\bspine_gateway_\w+/g) ?? []) {
        if (!exported.has(name)) throw new Error(`${where}: ${name} is not exported by the gateway`);
      }
      if (expr.startsWith('label_values(')) continue; // a Grafana function, not PromQL
      const answer = await prometheus.query(promqlAsGrafanaSends(expr));
      if (answer.status !== 'success') throw new Error(`${where}: Prometheus refused ${expr}: ${answer.error}`);
    }
  });

  test('every SQL query of the audit explorer runs on the embedded engine with the real schema', async () => {
    const store = gw.gateway.audit!.store!;
    const queries = targets('clickhouse');
    expect(queries.length).toBe(6);
    const rowsBy = new Map<string, unknown[]>();
    for (const { where, target } of queries) {
      const sql = sqlAsPluginSends(target.rawSql!, TRACE_ID).replace(/\bspine_audit\./g, `${store.database}.`);
      rowsBy.set(where, await store.queryRows(sql, {}).catch((err: Error) => Promise.reject(new Error(`${where}: ${err.message}`))));
    }
    // The queries answer for the traffic sent, not just parse.
    expect(rowsBy.get('audit-explorer: Top consumers')!.length).toBeGreaterThan(0);
    expect(rowsBy.get('audit-explorer: Refused requests')!.length).toBe(5);
    expect(rowsBy.get('audit-explorer: Trace ID search')!.length).toBe(25);
    expect(rowsBy.get('audit-explorer: Slowest transactions')!.length).toBe(20);
  });

  test('dashboards use only the provisioned data sources', () => {
    const provisioned = (
      parseYaml(readFileSync(join(REPO, 'dashboards', 'provisioning', 'datasources.yml'), 'utf8')) as { datasources: Array<{ uid: string }> }
    ).datasources.map((d) => d.uid);
    for (const { json } of DASHBOARDS)
      for (const p of json.panels) for (const uid of [p.datasource.uid, ...p.targets.map((t) => t.datasource.uid)]) expect(provisioned).toContain(uid);
  });
});

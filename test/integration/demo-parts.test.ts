import { request, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_FILE } from '../../src/data-dir';
import { loadDirectory } from '../../src/directory';
import { FIXTURES_DIR, loadCatalogue, readFixture, serviceRoot, type CatalogueEntry } from '../../src/demo/catalogue';
import { CONSUMERS, PRACTICES, SLOW_PRACTICE, demoDirectoryYaml, endpointsOf } from '../../src/demo/demo-directory';
import { FHIR_JSON, createSampleProvider } from '../../src/demo/sample-provider';
import { buildRequest, demoScenarios, requestFor, type DemoRequest } from '../../src/demo/scenarios';
import { TrafficGenerator, codeOf } from '../../src/demo/traffic';
import { DemoAborted, DemoStartError, startDemo, statusLine, tallyLines } from '../../src/demo/run-demo';
import { portInUseLine } from '../../src/demo/demo-options';
import { send, startGateway, tempDir, waitFor, type RunningGateway } from '../helpers/test-kit';

/**
 * The demo's parts in process (test/system/demo.test.ts runs the whole of it from dist):
 * the sample provider answers every interaction of the catalogue with the fixtures'
 * payloads, the demo directory routes every one of them through a real gateway, and each
 * scenario of the traffic mix gets the answer it is there to show.
 */
const catalogue = loadCatalogue();
const SLOW_MS = 1500;

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

let provider: Server;
let origin: string;
beforeAll(async () => {
  provider = createSampleProvider({ catalogue, slow: { ods: SLOW_PRACTICE.ods, delayMs: SLOW_MS }, latency: false });
  origin = await listen(provider);
});
afterAll(async () => {
  provider.closeAllConnections();
  await close(provider);
});

/** Sends a demo request through the gateway, its target as written (no URL parser in between), and names the answer "201" or "403 FOT_CHECK_FAILED". */
function answerTo(gw: RunningGateway, req: DemoRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, ...(req.body === undefined ? {} : { 'Content-Length': String(req.body.length) }) };
    const r = request({ host: '127.0.0.1', port: gw.proxyPort, method: req.method, path: `/${req.target}`, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(`${res.statusCode} ${codeOf(res.statusCode ?? 0, Buffer.concat(chunks))}`.trim()));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(req.body);
  });
}

describe('sample provider', () => {
  const at = (entry: CatalogueEntry) => serviceRoot(origin, PRACTICES[0].ods, entry.capability);

  test('answers every interaction of the catalogue, in its right form, with FHIR JSON', async () => {
    expect(catalogue.length).toBe(25);
    for (const entry of catalogue) {
      const { path, body } = requestFor(entry);
      expect(path.split('?')[0]).toMatch(new RegExp(entry.pathRegex)); // the generator sends each interaction's own form
      const reply = await send(`${at(entry)}${path}`, { method: entry.method, body });
      expect({ id: entry.id, status: reply.status }).toEqual({ id: entry.id, status: entry.id.endsWith(':create:appointment-1') ? 201 : 200 });
      expect(reply.headers['content-type']).toBe(FHIR_JSON);
      expect(JSON.parse(reply.body.toString()).resourceType).not.toBe('OperationOutcome');
    }
  });

  test("serves the fixtures' bytes, telling amend from cancel and medications from allergies by the body", async () => {
    const byId = (end: string) => catalogue.find((e) => e.id.endsWith(end))!;
    const bytesOf = async (end: string, body?: Buffer, ods = PRACTICES[0].ods) => {
      const entry = byId(end);
      return (await send(`${serviceRoot(origin, ods, entry.capability)}${requestFor(entry).path}`, { method: entry.method, body })).body;
    };
    expect(await bytesOf('fhir:rest:read:metadata-1')).toEqual(readFixture('foundations/capabilitystatement-foundations-appointments.json'));
    expect(await bytesOf('structured:fhir:rest:read:metadata-1')).toEqual(readFixture('structured/capabilitystatement-structured.json'));
    expect(await bytesOf('search:slot-1')).toEqual(readFixture('appointments/search-for-free-slots-response.json'));
    expect(await bytesOf('cancel:appointment-1', readFixture('appointments/cancel-appointment-request.json'))).toEqual(
      readFixture('appointments/cancel-appointment-request.json'),
    );
    expect(await bytesOf('update:appointment-1', readFixture('appointments/amend-appointment-request.json'))).toEqual(
      readFixture('appointments/amend-appointment-request.json'),
    );
    const allergies = readFixture('structured/getstructuredrecord-allergies-request.json');
    expect(await bytesOf('gpc.getstructuredrecord-1', allergies)).toEqual(readFixture('structured/getstructuredrecord-allergies-response.json'));
    const meds = readFixture('structured/getstructuredrecord-medications-request.json');
    expect(await bytesOf('gpc.getstructuredrecord-1', meds)).toEqual(readFixture('structured/getstructuredrecord-medications-response.json'));
    expect(FIXTURES_DIR).toMatch(/test\/fixtures\/gpconnect$/);
  });

  test('answers 404 with an OperationOutcome for an unknown path, method, practice or patient', async () => {
    const root = serviceRoot(origin, PRACTICES[0].ods, 'foundations');
    const notFound = readFixture('operationoutcome/provider-404-no-record-found.json');
    for (const [method, url] of [
      ['GET', `${root}/Nothing/here`],
      ['GET', `${origin}/`],
      ['GET', `${origin}/A20047/STU3/1/gpconnect/elsewhere/metadata`],
      ['DELETE', `${root}/Appointment/148`],
      ['POST', `${root}/metadata`],
    ]) {
      const reply = await send(url, { method });
      expect({ url, method, status: reply.status, type: reply.headers['content-type'] }).toEqual({ url, method, status: 404, type: FHIR_JSON });
      expect(reply.body).toEqual(notFound);
    }
    const unknownPatient = await send(`${root}/Patient/0000000`);
    expect(unknownPatient.status).toBe(404);
    expect(codeOf(404, unknownPatient.body)).toBe('PATIENT_NOT_FOUND');
  });

  test('the slow practice takes its delay; the others answer at once', async () => {
    let started = Date.now();
    expect((await send(`${serviceRoot(origin, SLOW_PRACTICE.ods, 'foundations')}/metadata`)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(SLOW_MS - 5);
    started = Date.now();
    expect((await send(`${serviceRoot(origin, PRACTICES[0].ods, 'foundations')}/metadata`)).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(SLOW_MS / 2);
  });
});

describe('through the gateway', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway(demoDirectoryYaml(catalogue, origin), { UPSTREAM_TIMEOUT_MS: '500', INTERACTION_CHECK: 'enforce', JWT_CHECK: 'enforce' });
  });
  afterAll(() => gw.stop());

  test('the demo directory loads without a warning and gives every catalogue interaction an endpoint', () => {
    const file = join(tempDir('demo-dir-'), 'directory.yaml');
    writeFileSync(file, demoDirectoryYaml(catalogue, origin));
    const loaded = loadDirectory(file, new Set(catalogue.map((e) => e.id)));
    expect(loaded.warnings).toEqual([]);
    expect(loaded.index.agreements).not.toBeNull();
    const routed = new Set(endpointsOf(PRACTICES[0], catalogue, origin).flatMap((e) => e.interactions.map((i) => i.id)));
    expect([...routed].sort()).toEqual(catalogue.map((e) => e.id).sort());
    const environments = Object.values(CONSUMERS).map((c) => loaded.index.consumers.get(c.asid)!.environment);
    expect(new Set(environments)).toEqual(new Set(['test', 'live']));
  });

  test('every catalogue interaction, in its right form with a realistic token, is forwarded and answered', async () => {
    const endpoints = endpointsOf(PRACTICES[0], catalogue, origin);
    for (const entry of catalogue) {
      // The urgent care system holds every interaction but the HTML record's, which the test system sends.
      const consumer = CONSUMERS.urgentCare.accredited(entry) ? CONSUMERS.urgentCare : CONSUMERS.integrator;
      const endpoint = endpoints.find((e) => e.interactions.includes(entry))!;
      const answer = await answerTo(gw, buildRequest({ consumer, practice: PRACTICES[0], endpoint, entry }));
      expect({ id: entry.id, answer }).toEqual({ id: entry.id, answer: entry.id.endsWith(':create:appointment-1') ? '201' : '200' });
    }
  });

  test('each scenario of the mix gets the answer it is there to show', async () => {
    const mix = demoScenarios(catalogue, origin);
    const shown = mix.filter((s) => s.expect !== undefined);
    expect(shown.length).toBe(15);
    for (const scenario of shown) {
      const answers = await Promise.all(scenario.make().map((req) => answerTo(gw, req)));
      let wanted = [scenario.expect!];
      if (scenario.expect === '429 RATE_LIMITED') {
        expect(answers).toContain('429 RATE_LIMITED');
        wanted = ['200', '429 RATE_LIMITED'];
      }
      for (const answer of answers)
        expect({ scenario: scenario.name, answer: wanted.includes(answer) ? 'as shown' : answer }).toEqual({ scenario: scenario.name, answer: 'as shown' });
    }
  });

  test('the forwarded scenarios of the live systems are answered 2xx', async () => {
    const live = demoScenarios(catalogue, origin).filter((s) => s.expect === undefined && s.name.startsWith('live:'));
    expect(live.length).toBeGreaterThan(20);
    for (const scenario of live) {
      const [answer] = await Promise.all(scenario.make().map((req) => answerTo(gw, req)));
      expect({ scenario: scenario.name, answer }).toEqual({ scenario: scenario.name, answer: expect.stringMatching(/^20[01]$/) });
    }
  });

  test('the generator sends the mix at its bounded rate until stopped, and tallies the answers', async () => {
    const traffic = new TrafficGenerator(demoScenarios(catalogue, origin), { host: '127.0.0.1', proxyPort: gw.proxyPort, ratePerSecond: 40, maxInFlight: 64 });
    const started = Date.now();
    traffic.start();
    await waitFor(() => traffic.tally.size >= 6 && [...traffic.tally.keys()].some((k) => k.startsWith('403 ')), 20_000, 'a varied tally');
    await traffic.stop();
    const elapsed = (Date.now() - started) / 1000;
    // At most 40 picks a second, a burst of 8 the largest pick.
    expect(traffic.sent).toBeLessThanOrEqual(Math.ceil(40 * elapsed + 1) * 8);
    expect(traffic.tally.get('200')).toBeGreaterThan(0);
    const sent = traffic.sent;
    await new Promise((r) => setTimeout(r, 300)); // a window in which nothing may be sent
    expect(traffic.sent).toBe(sent);
  });
});

/**
 * The demo's start and stop in this process (the gateway is the built dist/src/main.js, a
 * child, so `npx tsc -p tsconfig.json` first); test/system/demo.test.ts adds the signals.
 */
describe('startDemo', () => {
  const options = (dir = tempDir('demo-run-')) => ({ proxyPort: 0, adminPort: 0, providerPort: 0, rate: 20, dir });
  const gatewaysOf = (pid: number) =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('dist/src/main.js');
        } catch {
          return false;
        }
      })
      .map(Number);

  test('starts the provider, the gateway and traffic, prints where to look, and stops all of it', async () => {
    const lines: string[] = [];
    const demo = await startDemo(options(), (line = '') => lines.push(line), new AbortController().signal);
    expect(gatewaysOf(process.pid)).toEqual([demo.gatewayPid]);
    expect(lines).toContain(`  metrics    http://127.0.0.1:${demo.adminPort}/metrics`);
    await waitFor(
      async () => {
        const reply = await send(`http://127.0.0.1:${demo.adminPort}/audit/summary?group_by=outcome`);
        if (reply.status !== 200) return false;
        const outcomes = (JSON.parse(reply.body.toString()) as { groups: Array<{ key: { outcome: string } }> }).groups.map((g) => g.key.outcome);
        return outcomes.includes('forwarded') && outcomes.includes('denied');
      },
      60_000,
      'forwarded and denied records',
      500,
    );
    await Promise.all([demo.stop('test'), demo.stop('twice')]);
    expect(await demo.gatewayExited).toBe(0);
    expect(gatewaysOf(process.pid)).toEqual([]);
    expect(lines.filter((l) => l.includes(': stopping the traffic'))).toEqual([
      `test: stopping the traffic, the gateway (pid ${demo.gatewayPid}) and the sample provider...`,
    ]);
    expect(lines.at(-1)).toMatch(/^Stopped\. The audit trail stays in /);
    expect(lines.some((l) => /^\s+\d+ {2}200$/.test(l))).toBe(true);
  }, 90_000);

  test('an abort while starting stops what was started and releases DEMO_DIR', async () => {
    const dir = tempDir('demo-abort-');
    const abort = new AbortController();
    abort.abort();
    await expect(startDemo(options(dir), () => {}, abort.signal)).rejects.toBeInstanceOf(DemoAborted);
    expect(gatewaysOf(process.pid)).toEqual([]);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false); // DEMO_DIR is free again
    // A port in use stops a start with one line, before anything starts.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      await expect(startDemo({ ...options(dir), proxyPort: port }, () => {}, new AbortController().signal)).rejects.toThrow(
        new DemoStartError(portInUseLine('proxyPort', port, '127.0.0.1', 'EADDRINUSE')),
      );
    } finally {
      holder.close();
    }
  }, 60_000);

  test('the periodic line sorts the answers into provider, gateway and timeout', () => {
    const tally = new Map([
      ['200', 10],
      ['404 PATIENT_NOT_FOUND', 2],
      ['403 FOT_CHECK_FAILED', 3],
      ['504 UPSTREAM_TIMEOUT', 1],
      ['no response (ECONNRESET)', 1],
    ]);
    expect(statusLine(75_400, 17, tally)).toBe('1:15  17 sent: 12 answered by a provider, 3 refused by the gateway, 1 timed out');
    expect(tallyLines(tally)[0]).toBe('    10  200');
  });
});

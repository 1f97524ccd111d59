import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import type { Server } from 'node:http';
import { join, relative } from 'node:path';
import { DataDirInUseError, DataDirLock } from '../data-dir';
import { refusalCatalogue } from '../errors';
import { INTERACTIONS_FILE, REPO_ROOT, loadCatalogue, serviceRoot } from './catalogue';
import { CONSUMERS, PRACTICES, SLOW_PRACTICE, demoDirectoryYaml } from './demo-directory';
import { DemoOptionError, PORT_SETTINGS, demoOptions, portInUseLine, type DemoOptions, type PortSetting } from './demo-options';
import { createSampleProvider } from './sample-provider';
import { demoScenarios } from './scenarios';
import { TrafficGenerator } from './traffic';

/**
 * `npm run demo`: the sample GP Connect provider (in this process), the gateway (a child
 * process: the built dist/src/main.js on the embedded engine) and the traffic generator
 * (in this process), until Ctrl-C or SIGTERM, which stop all three and exit 0.
 * README "Demo" documents it.
 */
const HOST = '127.0.0.1';
/** The gateway gives up on a provider after this (the slow practice takes longer). */
const UPSTREAM_TIMEOUT_MS = 2000;
const SLOW_DELAY_MS = 3000;
/** How long the gateway may take to stop before it is killed. */
const STOP_DEADLINE_MS = 15_000;
const STATUS_EVERY_MS = 15_000;
const MAIN = join(REPO_ROOT, 'dist', 'src', 'main.js');

const out = (line = '') => process.stdout.write(`${line}\n`);
/** A path as the user would type it from where they are: relative below the current folder, else absolute. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}
function fail(line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

/** Fails with one line if a fixed port cannot be bound, before anything is started. */
async function checkPorts(options: DemoOptions): Promise<void> {
  for (const key of Object.keys(PORT_SETTINGS) as PortSetting[]) {
    const port = options[key];
    if (port === 0) continue;
    const problem = await new Promise<string | null>((resolve) => {
      const probe = createNetServer();
      probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EADDRINUSE'));
      probe.listen(port, HOST, () => probe.close(() => resolve(null)));
    });
    if (problem !== null) fail(portInUseLine(key, port, HOST, problem));
  }
}

function listenProvider(server: Server, options: DemoOptions): Promise<number> {
  return new Promise((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => fail(portInUseLine('providerPort', options.providerPort, HOST, err.code)));
    server.listen(options.providerPort, HOST, () => resolve((server.address() as { port: number }).port));
  });
}

interface RunningGateway {
  readonly child: ChildProcess;
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly exited: Promise<number | null>;
}

/**
 * Starts the gateway with the demo's settings; the user's other gateway settings pass
 * through (JWT_CHECK=enforce npm run demo). Its log goes to DEMO_DIR/gateway.log; its
 * start-up failure (one line) is shown, a port in use as the demo's own line.
 */
function startGateway(options: DemoOptions, directoryFile: string, spawned: (child: ChildProcess) => void): Promise<RunningGateway> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The demo runs on the embedded engine, plain HTTP, admin open on loopback.
  for (const name of [
    'GATEWAY_CONFIG',
    'CLICKHOUSE_URL',
    'ADMIN_TOKENS_FILE',
    'ADMIN_HOST',
    'TLS_CERT_FILE',
    'TLS_KEY_FILE',
    'TLS_CLIENT_CA_FILE',
    'TLS_CRL_FILE',
    'AUDIT_ENABLED',
  ]) {
    delete env[name];
  }
  Object.assign(env, {
    HOST,
    PORT: String(options.proxyPort),
    ADMIN_PORT: String(options.adminPort),
    DIRECTORY_FILE: directoryFile,
    INTERACTIONS_FILE,
    DATA_DIR: join(options.dir, 'data'),
    UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
    SHUTDOWN_GRACE_MS: '2000',
    ENVIRONMENT: env.ENVIRONMENT ?? 'test',
    LOG_LEVEL: env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? env.LOG_LEVEL : 'info', // the listening line is info
  });
  const child = spawn(process.execPath, [MAIN], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned(child);
  const log = createWriteStream(join(options.dir, 'gateway.log'));
  let stderr = '';
  let pending = '';
  let listening: ((ports: { proxyPort: number; adminPort: number }) => void) | null = null;
  child.stdout!.on('data', (chunk: Buffer) => {
    log.write(chunk);
    if (listening === null) return;
    pending += chunk.toString('utf8');
    const line = pending.split('\n').find((l) => l.includes('"gateway listening"'));
    if (line === undefined) return;
    const ports = JSON.parse(line) as { proxyPort: number; adminPort: number };
    pending = '';
    listening(ports);
    listening = null;
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    log.write(chunk);
    stderr = (stderr + chunk.toString('utf8')).slice(-4096); // only its last line is shown
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => log.end(() => resolve(code))));
  return new Promise((resolve) => {
    listening = (ports) => resolve({ child, ...ports, exited });
    void exited.then((code) => {
      if (listening === null) return;
      const line = stderr.trim().split('\n').pop() ?? `exited with status ${code}`;
      const inUse = /EADDRINUSE.*:(\d+)\s*$/.exec(line);
      if (inUse !== null) fail(portInUseLine(Number(inUse[1]) === options.adminPort ? 'adminPort' : 'proxyPort', Number(inUse[1]), HOST, 'EADDRINUSE'));
      if (line.includes('is in use by another gateway'))
        fail(`demo: ${shown(join(options.dir, 'data'))} is in use by another gateway (another demo?): stop it, or set DEMO_DIR to another folder`);
      fail(`demo: the gateway could not start: ${line.replace(/^spine-gateway: (cannot start: )?/, '')} (log: ${shown(join(options.dir, 'gateway.log'))})`);
    });
  });
}

/** "200 ×71 · 403 FOT_CHECK_FAILED ×9 · ...", most frequent first. */
function tallyText(tally: ReadonlyMap<string, number>): string[] {
  return [...tally].sort((a, b) => b[1] - a[1]).map(([key, n]) => `${String(n).padStart(6)}  ${key}`);
}

/** Forwarded (a provider answered), refused by the gateway, timed out: for the periodic line. */
function statusLine(startedAt: number, traffic: TrafficGenerator): string {
  let answered = 0;
  let refused = 0;
  let timedOut = 0;
  for (const [key, n] of traffic.tally) {
    const [status, code = ''] = key.split(' ');
    if (code === 'UPSTREAM_TIMEOUT') timedOut += n;
    else if (code in refusalCatalogue) refused += n;
    else if (/^\d+$/.test(status)) answered += n;
  }
  const s = Math.round((Date.now() - startedAt) / 1000);
  const clock = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  return `${clock}  ${traffic.sent} sent: ${answered} answered by a provider, ${refused} refused by the gateway, ${timedOut} timed out`;
}

async function main(): Promise<void> {
  let options: DemoOptions;
  try {
    options = demoOptions();
  } catch (err) {
    if (err instanceof DemoOptionError) fail(`demo: ${err.message}`);
    throw err;
  }
  await checkPorts(options);
  const catalogue = loadCatalogue();
  // One demo per DEMO_DIR: a second would rewrite the first one's directory file, which its gateway reloads.
  let lock: DataDirLock;
  try {
    lock = DataDirLock.acquire(options.dir);
  } catch (err) {
    if (err instanceof DataDirInUseError)
      fail(`demo: DEMO_DIR ${shown(options.dir)} is in use by another demo (pid ${err.owner.pid}): stop it, or set DEMO_DIR to another folder`);
    throw err;
  }
  process.on('exit', () => lock.release());
  mkdirSync(join(options.dir, 'data'), { recursive: true });

  // Signals are handled from here on, so nothing started is left behind.
  let stop: (signal: string) => void = () => process.exit(0);
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const provider = createSampleProvider({ catalogue, slow: { ods: SLOW_PRACTICE.ods, delayMs: SLOW_DELAY_MS } });
  const providerPort = await listenProvider(provider, options);
  const origin = `http://${HOST}:${providerPort}`;
  const directoryFile = join(options.dir, 'directory.yaml');
  writeFileSync(directoryFile, demoDirectoryYaml(catalogue, origin));
  // A signal while the gateway starts: stop it (by its pid) and the provider, then exit.
  let starting: ChildProcess | null = null;
  stop = () => {
    provider.closeAllConnections();
    provider.close();
    if (starting === null) process.exit(0);
    starting.once('exit', () => process.exit(0));
    starting.kill('SIGTERM');
  };

  const gateway = await startGateway(options, directoryFile, (child) => (starting = child));
  const traffic = new TrafficGenerator(demoScenarios(catalogue, origin), {
    host: HOST,
    proxyPort: gateway.proxyPort,
    ratePerSecond: options.rate,
    maxInFlight: 64,
  });
  const startedAt = Date.now();
  traffic.start();
  const status = setInterval(() => out(statusLine(startedAt, traffic)), STATUS_EVERY_MS);

  let stopping = false;
  const stopAll = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    clearInterval(status);
    out();
    out(`${why}: stopping the traffic, the gateway (pid ${gateway.child.pid}) and the sample provider...`);
    await traffic.stop();
    if (gateway.child.exitCode === null && gateway.child.signalCode === null) {
      gateway.child.kill('SIGTERM');
      const deadline = setTimeout(() => gateway.child.kill('SIGKILL'), STOP_DEADLINE_MS);
      await gateway.exited;
      clearTimeout(deadline);
    }
    provider.closeAllConnections();
    await new Promise<void>((resolve) => provider.close(() => resolve()));
    out(statusLine(startedAt, traffic));
    for (const line of tallyText(traffic.tally)) out(line);
    out(`Stopped. The audit trail stays in ${shown(join(options.dir, 'data'))} (the next run adds to it; delete the folder to start afresh).`);
    process.exit(code);
  };
  stop = (signal) => void stopAll(signal, 0);
  void gateway.exited.then((code) => {
    if (!stopping) {
      process.stderr.write(`demo: the gateway exited unexpectedly (status ${code}); its log: ${shown(join(options.dir, 'gateway.log'))}\n`);
      void stopAll('gateway gone', 1);
    }
  });

  const admin = `http://${HOST}:${gateway.adminPort}`;

  const riverside = serviceRoot(origin, PRACTICES[0].ods, 'foundations');
  const pharmacy = CONSUMERS.pharmacy;
  out('Spine gateway demo is running (synthetic data only).');
  out();
  out(`  explorer   ${admin}/                the audit trail: search, trace, summary, export`);
  out(`  metrics    ${admin}/metrics`);
  out(`  proxy      http://${HOST}:${gateway.proxyPort}/<provider URL>   (the gateway, pid ${gateway.child.pid})`);
  out(
    `  provider   ${origin}/{ODS}/STU3/1/gpconnect/...   (sample GP Connect provider: ${PRACTICES.length} practices; ${SLOW_PRACTICE.ods} takes ${SLOW_DELAY_MS / 1000} s, the gateway waits ${UPSTREAM_TIMEOUT_MS / 1000} s)`,
  );
  out(
    `  traffic    ${options.rate} a second from ${Object.keys(CONSUMERS).length} consumer systems, test and live: reads, bookings, refusals of every kind, timeouts, bad tokens`,
  );
  const jwtCheck = process.env.JWT_CHECK || 'report';
  out(
    `  checks     JWT_CHECK=${jwtCheck}, INTERACTION_CHECK=${process.env.INTERACTION_CHECK || 'enforce'}` +
      (jwtCheck === 'enforce' ? '' : ': bad tokens are forwarded with their findings recorded (JWT_CHECK=enforce npm run demo refuses them)'),
  );
  out(
    `  files      ${shown(directoryFile)} (directory), ${shown(join(options.dir, 'data'))} (audit data), ${shown(join(options.dir, 'gateway.log'))} (gateway log)`,
  );
  out();
  out("Send one yourself (the pharmacy reads the practice's metadata with a GP Connect token):");
  out(`  TOKEN=$(node -p "require('./dist/src/check').exampleToken({ aud: '${riverside}', scope: 'organization/*.read', ods: '${pharmacy.ods}' })")`);
  out(`  curl -i http://${HOST}:${gateway.proxyPort}/${riverside}/metadata -H "Authorization: Bearer $TOKEN" \\`);
  out(`    -H "Ssp-TraceID: $(node -p 'crypto.randomUUID()')" -H 'Ssp-From: ${pharmacy.asid}' -H 'Ssp-To: ${PRACTICES[0].asid}' \\`);
  out(`    -H 'Ssp-InteractionID: urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1'`);
  out();
  out(`Stop with Ctrl-C (or kill -TERM ${process.pid}): it stops everything it started.`);
}

void main().catch((err: unknown) => fail(`demo: ${(err as Error).message}`));

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import type { Server } from 'node:http';
import { join, relative } from 'node:path';
import { DataDirInUseError, DataDirLock } from '../data-dir';
import { refusalCatalogue } from '../errors';
import { INTERACTIONS_FILE, REPO_ROOT, loadCatalogue, serviceRoot } from './catalogue';
import { CONSUMERS, PRACTICES, SLOW_PRACTICE, demoDirectoryYaml } from './demo-directory';
import { PORT_SETTINGS, portInUseLine, type DemoOptions, type PortSetting } from './demo-options';
import { createSampleProvider } from './sample-provider';
import { demoScenarios } from './scenarios';
import { TrafficGenerator } from './traffic';

/**
 * The demo (README "Demo"): the sample GP Connect provider (in this process), the gateway
 * (a child process: the built dist/src/main.js on the embedded engine) and the traffic
 * generator (in this process). src/demo/demo.ts wires it to the signals.
 */
const HOST = '127.0.0.1';
/** The gateway gives up on a provider after this (the slow practice takes longer). */
const UPSTREAM_TIMEOUT_MS = 2000;
const SLOW_DELAY_MS = 3000;
/** How long the gateway may take to stop before it is killed. */
const STOP_DEADLINE_MS = 15_000;
const STATUS_EVERY_MS = 15_000;
const MAIN = join(REPO_ROOT, 'dist', 'src', 'main.js');

/** Start-up could not go on: one line for the user (stderr, exit 1); everything started so far is stopped. */
export class DemoStartError extends Error {}
/** A signal came while starting: everything started so far is stopped (exit 0). */
export class DemoAborted extends Error {}

export type Print = (line?: string) => void;

/** A path as the user would type it from where they are: relative below the current folder, else absolute. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}

/** Throws DemoStartError with one line if a fixed port cannot be bound, before anything is started. */
export async function checkPorts(options: DemoOptions): Promise<void> {
  for (const key of Object.keys(PORT_SETTINGS) as PortSetting[]) {
    const port = options[key];
    if (port === 0) continue;
    const problem = await new Promise<string | null>((resolve) => {
      const probe = createNetServer();
      probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EADDRINUSE'));
      probe.listen(port, HOST, () => probe.close(() => resolve(null)));
    });
    if (problem !== null) throw new DemoStartError(portInUseLine(key, port, HOST, problem));
  }
}

function listenProvider(server: Server, options: DemoOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new DemoStartError(portInUseLine('providerPort', options.providerPort, HOST, err.code))));
    server.listen(options.providerPort, HOST, () => resolve((server.address() as { port: number }).port));
  });
}

interface GatewayChild {
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
function startGateway(options: DemoOptions, directoryFile: string, spawned: (child: ChildProcess) => void): Promise<GatewayChild> {
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
  return new Promise((resolve, reject) => {
    listening = (ports) => resolve({ child, ...ports, exited });
    void exited.then((code) => {
      if (listening === null) return;
      listening = null;
      const line = stderr.trim().split('\n').pop() || `exited with status ${code}`;
      const inUse = /EADDRINUSE.*:(\d+)\s*$/.exec(line);
      if (inUse !== null) {
        reject(new DemoStartError(portInUseLine(Number(inUse[1]) === options.adminPort ? 'adminPort' : 'proxyPort', Number(inUse[1]), HOST, 'EADDRINUSE')));
      } else if (line.includes('is in use by another gateway')) {
        reject(new DemoStartError(`demo: ${shown(join(options.dir, 'data'))} is in use by another gateway: stop it, or set DEMO_DIR to another folder`));
      } else {
        reject(
          new DemoStartError(
            `demo: the gateway could not start: ${line.replace(/^spine-gateway: (cannot start: )?/, '')} (log: ${shown(join(options.dir, 'gateway.log'))})`,
          ),
        );
      }
    });
  });
}

/** The answers counted, most frequent first: "   163  200", "    18  429 RATE_LIMITED". */
export function tallyLines(tally: ReadonlyMap<string, number>): string[] {
  return [...tally].sort((a, b) => b[1] - a[1]).map(([key, n]) => `${String(n).padStart(6)}  ${key}`);
}

/** Forwarded (a provider answered), refused by the gateway, timed out: the periodic line. */
export function statusLine(elapsedMs: number, sent: number, tally: ReadonlyMap<string, number>): string {
  let answered = 0;
  let refused = 0;
  let timedOut = 0;
  for (const [key, n] of tally) {
    const [status, code = ''] = key.split(' ');
    if (code === 'UPSTREAM_TIMEOUT') timedOut += n;
    else if (code in refusalCatalogue) refused += n;
    else if (/^\d+$/.test(status)) answered += n;
  }
  const s = Math.round(elapsedMs / 1000);
  const clock = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  return `${clock}  ${sent} sent: ${answered} answered by a provider, ${refused} refused by the gateway, ${timedOut} timed out`;
}

export interface RunningDemo {
  readonly gatewayPid: number;
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly providerPort: number;
  /** Resolves when the gateway exits, for any reason. */
  readonly gatewayExited: Promise<number | null>;
  /** Stops the traffic, the gateway (SIGTERM by its pid, SIGKILL past a deadline), then the provider; prints what was counted. Once. */
  stop(why: string): Promise<void>;
}

/**
 * Starts the demo and prints where to look. Throws DemoStartError (one line, everything
 * started so far stopped) or, when `abort` fires while starting, DemoAborted.
 */
export async function startDemo(options: DemoOptions, out: Print, abort: AbortSignal): Promise<RunningDemo> {
  await checkPorts(options);
  const catalogue = loadCatalogue();
  // One demo per DEMO_DIR: a second would rewrite the first one's directory file, which its gateway reloads.
  let lock: DataDirLock;
  try {
    lock = DataDirLock.acquire(options.dir);
  } catch (err) {
    if (err instanceof DataDirInUseError) {
      throw new DemoStartError(
        `demo: DEMO_DIR ${shown(options.dir)} is in use by another demo (pid ${err.owner.pid}): stop it, or set DEMO_DIR to another folder`,
      );
    }
    throw err;
  }
  mkdirSync(join(options.dir, 'data'), { recursive: true });

  const provider = createSampleProvider({ catalogue, slow: { ods: SLOW_PRACTICE.ods, delayMs: SLOW_DELAY_MS } });
  const closeProvider = () => {
    provider.closeAllConnections();
    return new Promise<void>((resolve) => provider.close(() => resolve()));
  };
  // A failed or aborted start stops what it started (by handle and pid) and releases DEMO_DIR.
  let starting: ChildProcess | null = null;
  const undo = async () => {
    if (starting !== null && starting.exitCode === null && starting.signalCode === null) {
      const child = starting;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    }
    if (provider.listening) await closeProvider();
    lock.release();
  };
  let gateway: GatewayChild;
  let providerPort: number;
  let origin: string;
  try {
    providerPort = await listenProvider(provider, options);
    origin = `http://${HOST}:${providerPort}`;
    const directoryFile = join(options.dir, 'directory.yaml');
    writeFileSync(directoryFile, demoDirectoryYaml(catalogue, origin));
    const aborted = new Promise<never>((_resolve, reject) => {
      const fire = () => reject(new DemoAborted('stopped while starting'));
      if (abort.aborted) fire();
      else abort.addEventListener('abort', fire, { once: true });
    });
    aborted.catch(() => undefined); // raced below; unobserved once the gateway is up
    const up = startGateway(options, directoryFile, (child) => (starting = child));
    up.catch(() => undefined); // raced below: an abort wins, and the gateway's failure after it is not news
    gateway = await Promise.race([up, aborted]);
  } catch (err) {
    await undo();
    throw err;
  }

  const traffic = new TrafficGenerator(demoScenarios(catalogue, origin), {
    host: HOST,
    proxyPort: gateway.proxyPort,
    ratePerSecond: options.rate,
    maxInFlight: 64,
  });
  const startedAt = Date.now();
  traffic.start();
  const status = setInterval(() => out(statusLine(Date.now() - startedAt, traffic.sent, traffic.tally)), STATUS_EVERY_MS);

  let stopped: Promise<void> | null = null;
  const stop = (why: string) =>
    (stopped ??= (async () => {
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
      await closeProvider();
      lock.release();
      out(statusLine(Date.now() - startedAt, traffic.sent, traffic.tally));
      for (const line of tallyLines(traffic.tally)) out(line);
      out(`Stopped. The audit trail stays in ${shown(join(options.dir, 'data'))} (the next run adds to it; delete the folder to start afresh).`);
    })());

  printBanner(out, options, origin, gateway);
  return {
    gatewayPid: gateway.child.pid!,
    proxyPort: gateway.proxyPort,
    adminPort: gateway.adminPort,
    providerPort,
    gatewayExited: gateway.exited,
    stop,
  };
}

function printBanner(out: Print, options: DemoOptions, origin: string, gateway: GatewayChild): void {
  const admin = `http://${HOST}:${gateway.adminPort}`;
  const riverside = serviceRoot(origin, PRACTICES[0].ods, 'foundations');
  const pharmacy = CONSUMERS.pharmacy;
  const jwtCheck = process.env.JWT_CHECK || 'report';
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
  out(
    `  checks     JWT_CHECK=${jwtCheck}, INTERACTION_CHECK=${process.env.INTERACTION_CHECK || 'enforce'}` +
      (jwtCheck === 'enforce' ? '' : ': bad tokens are forwarded with their findings recorded (JWT_CHECK=enforce npm run demo refuses them)'),
  );
  out(
    `  files      ${shown(join(options.dir, 'directory.yaml'))} (directory), ${shown(join(options.dir, 'data'))} (audit data), ${shown(join(options.dir, 'gateway.log'))} (gateway log)`,
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

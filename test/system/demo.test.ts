import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { REPO, send, tempDir, waitFor } from '../helpers/test-kit';

/**
 * `npm run demo` as a user runs it: the built dist/src/demo/demo.js as a child process, on
 * ephemeral ports (DEMO_*_PORT=0), with its own DEMO_DIR. Traffic must reach the audit
 * trail (forwarded and refused, several codes, test and live), and Ctrl-C or SIGTERM must
 * leave nothing running. The whole page (explorer) needs `npm run build`, as `npm test` does.
 */
const DEMO = join(REPO, 'dist', 'src', 'demo', 'demo.js');

interface Demo {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function runDemo(env: Record<string, string> = {}): Demo {
  const child = spawn(process.execPath, [DEMO], {
    cwd: REPO,
    env: { PATH: process.env.PATH, DEMO_PROXY_PORT: '0', DEMO_ADMIN_PORT: '0', DEMO_PROVIDER_PORT: '0', DEMO_DIR: tempDir('demo-'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** The processes whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (in parentheses, which may hold spaces): state, ppid, ...
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Resolves true when something accepts a connection on the port. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

function portsIn(stdout: string): { admin: string; proxyPort: number; providerPort: number; gatewayPid: number } {
  const admin = /explorer\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout)![1];
  const proxyPort = Number(/proxy\s+http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)![1]);
  const providerPort = Number(/provider\s+http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)![1]);
  const gatewayPid = Number(/\(the gateway, pid (\d+)\)/.exec(stdout)![1]);
  return { admin, proxyPort, providerPort, gatewayPid };
}

const running: Demo[] = [];
afterEach(() => {
  // A failed test must not leave a demo behind: stop each by its pid.
  for (const demo of running.splice(0)) {
    if (demo.child.exitCode === null && demo.child.signalCode === null) {
      for (const pid of childrenOf(demo.child.pid!)) process.kill(pid, 'SIGKILL');
      demo.child.kill('SIGKILL');
    }
  }
});

async function started(env: Record<string, string> = {}): Promise<Demo> {
  const demo = runDemo(env);
  running.push(demo);
  await waitFor(() => demo.stdout().includes('Stop with Ctrl-C') || demo.child.exitCode !== null, 60_000, 'the demo to say it runs');
  expect(demo.stderr()).toBe('');
  return demo;
}

interface SummaryGroup {
  key: Record<string, string>;
  transactions: number;
}
async function summary(admin: string, groupBy: string): Promise<SummaryGroup[]> {
  const reply = await send(`${admin}/audit/summary?group_by=${groupBy}&limit=1000`);
  return reply.status === 200 ? (JSON.parse(reply.body.toString()) as { groups: SummaryGroup[] }).groups : [];
}

describe('npm run demo', () => {
  test('traffic reaches the audit trail: forwarded and refused, several codes, a timeout, test and live; Ctrl-C stops it all and exits 0', async () => {
    const demo = await started({ DEMO_RATE: '20' });
    const out = demo.stdout();
    const { admin, proxyPort, providerPort, gatewayPid } = portsIn(out);
    expect(childrenOf(demo.child.pid!)).toEqual([gatewayPid]);
    expect(out).toContain(`metrics    ${admin}/metrics`);
    expect(out).toMatch(/curl -i http:\/\/127\.0\.0\.1:\d+\/http:\/\/127\.0\.0\.1:\d+\/A20047\/STU3\/1\/gpconnect\/fhir\/metadata/);
    expect(out).toContain("require('./dist/src/check').exampleToken(");

    const refusals = [
      'ASID_CHECK_FAILED_MESSAGESENDER',
      'FOT_CHECK_FAILED',
      'METHOD_NOT_ALLOWED',
      'ENDPOINT_VARIES_FROM_TARGETURL',
      'RATE_LIMITED',
      'INTERACTION_MISMATCH',
    ];
    await waitFor(
      async () => {
        const groups = await summary(admin, 'outcome,error_code');
        const denied = new Set(groups.filter((g) => g.key.outcome === 'denied').map((g) => g.key.error_code));
        const outcomes = new Set(groups.map((g) => g.key.outcome));
        return outcomes.has('forwarded') && outcomes.has('upstream_timeout') && refusals.every((code) => denied.has(code));
      },
      90_000,
      `forwarded and timed-out records, and refusals ${refusals.join(', ')}, in the audit summary`,
      1000,
    );
    await waitFor(
      async () => {
        const environments = (await summary(admin, 'environment')).map((g) => g.key.environment);
        return environments.includes('test') && environments.includes('live');
      },
      30_000,
      'test and live records',
      1000,
    );
    const metrics = await send(`${admin}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body.toString()).toMatch(/^spine_gateway_requests_total\{/m);
    const page = await send(`${admin}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);

    demo.child.kill('SIGINT');
    expect(await demo.exited).toEqual({ code: 0, signal: null });
    expect(alive(gatewayPid)).toBe(false);
    expect(await accepts(proxyPort)).toBe(false);
    expect(await accepts(providerPort)).toBe(false);
    expect(demo.stdout()).toMatch(/SIGINT: stopping the traffic, the gateway \(pid \d+\) and the sample provider\.\.\.\n/);
    expect(demo.stdout()).toContain('Stopped. The audit trail stays in');
    expect(demo.stderr()).toBe('');
  }, 150_000);

  test('SIGTERM stops it all and exits 0', async () => {
    const demo = await started();
    const { gatewayPid, proxyPort } = portsIn(demo.stdout());
    demo.child.kill('SIGTERM');
    expect(await demo.exited).toEqual({ code: 0, signal: null });
    expect(alive(gatewayPid)).toBe(false);
    expect(await accepts(proxyPort)).toBe(false);
    expect(demo.stderr()).toBe('');
  }, 90_000);

  test('a second demo on the same DEMO_DIR gets one line and exit 1, and leaves the first one alone', async () => {
    const dir = tempDir('demo-shared-');
    const first = await started({ DEMO_DIR: dir });
    const directory = readFileSync(join(dir, 'directory.yaml'), 'utf8');
    const second = runDemo({ DEMO_DIR: dir });
    running.push(second);
    expect(await second.exited).toEqual({ code: 1, signal: null });
    expect(second.stderr()).toMatch(/^demo: DEMO_DIR \S+ is in use by another demo \(pid \d+\): stop it, or set DEMO_DIR to another folder\n$/);
    expect(second.stdout()).toBe('');
    expect(readFileSync(join(dir, 'directory.yaml'), 'utf8')).toBe(directory);
    expect(first.child.exitCode).toBeNull();
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
  }, 90_000);

  test('a signal while the gateway is still starting stops it too', async () => {
    const demo = runDemo();
    running.push(demo);
    let gateway: number[] = [];
    await waitFor(() => (gateway = childrenOf(demo.child.pid!)).length > 0, 30_000, 'the gateway to be spawned');
    demo.child.kill('SIGINT');
    expect(await demo.exited).toEqual({ code: 0, signal: null });
    expect(alive(gateway[0])).toBe(false);
  }, 60_000);

  describe('a port in use gets one line naming the setting, and exit 1', () => {
    let holder: Server;
    let port: number;
    beforeAll(async () => {
      holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      port = (holder.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((resolve) => holder.close(() => resolve())));

    test.each([
      ['DEMO_PROXY_PORT', "the gateway's proxy port"],
      ['DEMO_ADMIN_PORT', "the gateway's admin port: explorer, /metrics"],
      ['DEMO_PROVIDER_PORT', "the sample provider's port"],
    ])('%s', async (variable, what) => {
      const demo = runDemo({ [variable]: String(port) });
      running.push(demo);
      expect(await demo.exited).toEqual({ code: 1, signal: null });
      const lines = demo.stderr().split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`demo: port ${port} on 127.0.0.1 (${what}) is already in use: stop what uses it, or set ${variable} to a free port`);
      expect(demo.stderr()).not.toMatch(/EADDRINUSE|\n\s+at /);
      expect(demo.stdout()).toBe('');
    });
  });

  test.each([
    [{ DEMO_PROXY_PORT: 'eighty' }, 'demo: DEMO_PROXY_PORT must be a port number, 0 to 65535 (0: any free port), got "eighty"'],
    [{ DEMO_PROXY_PORT: '18080', DEMO_ADMIN_PORT: '18080' }, 'demo: DEMO_PROXY_PORT and DEMO_ADMIN_PORT are both 18080: give each its own port'],
    [{ DEMO_RATE: '1000' }, 'demo: DEMO_RATE must be a number of requests a second, 0.1 to 100, got "1000"'],
  ])('%j is refused with one line and exit 1', async (env, line) => {
    const demo = runDemo(env);
    expect(await demo.exited).toEqual({ code: 1, signal: null });
    expect(demo.stderr()).toBe(`${line}\n`);
  });
});

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runGateway, type ChildGateway } from '../helpers/child-gateway';
import { getText } from '../helpers/metrics-kit';
import { REPO, directoryYaml, adminTokensFile } from '../helpers/test-kit';

/**
 * The container image (HOST=0.0.0.0) must not expose an open audit API.
 * The built gateway runs as a child process; where a port is bound is read from the
 * kernel (/proc/net/tcp, listening sockets), not only from the gateway's own log line.
 */
const DIRECTORY = directoryYaml({ metadata: 'http://127.0.0.1:1/A20047/STU3/1/gpconnect/fhir' });
const BASE = { AUDIT_ENABLED: 'false', LOG_LEVEL: 'info' };

/** The IPv4 address a listening TCP socket on `port` is bound to, from /proc/net/tcp ("127.0.0.1", "0.0.0.0"), or null. */
function boundAddress(port: number): string | null {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '0A') continue; // 0A: LISTEN
    const [hexAddr, hexPort] = f[1].split(':');
    if (parseInt(hexPort, 16) !== port) continue;
    const n = parseInt(hexAddr, 16); // little-endian on x86 and arm64
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  }
  return null;
}

function lines(gw: ChildGateway): Array<Record<string, unknown>> {
  return gw
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

function tokensFile(): string {
  return adminTokensFile([{ name: 'dana', role: 'auditor', token: 'dana-token-1' }]);
}

async function stop(gw: ChildGateway): Promise<void> {
  gw.kill('SIGTERM');
  await gw.exited;
}

test('HOST=0.0.0.0 without ADMIN_TOKENS_FILE: the admin port binds 127.0.0.1 only, with one warning saying why and how to open it', async () => {
  const gw = await runGateway(DIRECTORY, { ...BASE, HOST: '0.0.0.0' });
  try {
    expect(boundAddress(gw.proxyPort)).toBe('0.0.0.0');
    expect(boundAddress(gw.adminPort)).toBe('127.0.0.1');
    const listening = lines(gw).find((l) => l.msg === 'gateway listening')!;
    expect(listening).toMatchObject({ host: '0.0.0.0', adminHost: '127.0.0.1' });
    const warnings = lines(gw).filter((l) => l.level === 40 && String(l.msg).includes('ADMIN_TOKENS_FILE'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/127\.0\.0\.1/);
    expect(warnings[0].msg).toMatch(/set ADMIN_TOKENS_FILE/);
    expect((await getText(`http://127.0.0.1:${gw.adminPort}/healthz`)).status).toBe(200);
  } finally {
    await stop(gw);
  }
});

test("the Dockerfile's HEALTHCHECK command still reaches /healthz on the loopback-only admin port", async () => {
  const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  const script = /CMD node -e "((?:[^"\\]|\\.)*)"/.exec(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')))![1];
  const gw = await runGateway(DIRECTORY, { ...BASE, HOST: '0.0.0.0' });
  try {
    const run = (env: Record<string, string>) => {
      try {
        execFileSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env }, timeout: 5000 });
        return 0;
      } catch (err) {
        return (err as { status: number }).status;
      }
    };
    expect(run({ ADMIN_PORT: String(gw.adminPort) })).toBe(0);
    expect(run({ ADMIN_PORT: String(gw.adminPort), ADMIN_HOST: '0.0.0.0' })).toBe(0);
    expect(run({ ADMIN_PORT: String(gw.adminPort), ADMIN_HOST: '127.0.0.1' })).toBe(0);
    expect(run({ ADMIN_PORT: '1' })).toBe(1); // nothing listens on port 1: unhealthy
  } finally {
    await stop(gw);
  }
});

test('HOST=0.0.0.0 with ADMIN_TOKENS_FILE: the admin port binds HOST', async () => {
  const gw = await runGateway(DIRECTORY, { ...BASE, HOST: '0.0.0.0', ADMIN_TOKENS_FILE: tokensFile() });
  try {
    expect(boundAddress(gw.adminPort)).toBe('0.0.0.0');
    expect(lines(gw).filter((l) => l.level === 40 && String(l.msg).includes('ADMIN_TOKENS_FILE'))).toHaveLength(0);
  } finally {
    await stop(gw);
  }
});

test('an explicit loopback ADMIN_HOST is honoured without tokens', async () => {
  const gw = await runGateway(DIRECTORY, { ...BASE, HOST: '0.0.0.0', ADMIN_HOST: '127.0.0.1' });
  try {
    expect(boundAddress(gw.adminPort)).toBe('127.0.0.1');
    expect(lines(gw).find((l) => l.msg === 'gateway listening')).toMatchObject({ adminHost: '127.0.0.1' });
  } finally {
    await stop(gw);
  }
});

test.each(['0.0.0.0', '::', '10.1.2.3'])('ADMIN_HOST=%s without ADMIN_TOKENS_FILE: exit 1 with one line', async (adminHost) => {
  const err = await runGateway(DIRECTORY, { ...BASE, HOST: '127.0.0.1', ADMIN_HOST: adminHost }).then(
    async (gw) => {
      await stop(gw);
      throw new Error('the gateway started');
    },
    (e: { code: number; stderr: string }) => e,
  );
  expect(err.code).toBe(1);
  const stderr = err.stderr.trim().split('\n');
  expect(stderr).toHaveLength(1);
  expect(stderr[0]).toMatch(/^spine-gateway: cannot start: .*ADMIN_HOST.*ADMIN_TOKENS_FILE/);
});

/**
 * Second pass (attacking the item 8 fix): IPv6 and name spellings of "everywhere" and
 * "here", read back from the kernel. IPv6 listening sockets are in /proc/net/tcp6.
 */
function boundAddress6(port: number): string | null {
  for (const line of readFileSync('/proc/net/tcp6', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '0A') continue;
    const [hexAddr, hexPort] = f[1].split(':');
    if (parseInt(hexPort, 16) === port) return hexAddr; // 32 hex digits, per 32-bit word in host order
  }
  return null;
}
const V6_ANY = '0'.repeat(32);

test('HOST=:: (IPv6 any) without tokens: the proxy port on ::, the admin port on 127.0.0.1 only, nothing on IPv6', async () => {
  const gw = await runGateway(DIRECTORY, { ...BASE, HOST: '::' });
  try {
    expect(boundAddress6(gw.proxyPort)).toBe(V6_ANY);
    expect(boundAddress(gw.adminPort)).toBe('127.0.0.1');
    expect(boundAddress6(gw.adminPort)).toBeNull();
    expect(lines(gw).find((l) => l.msg === 'gateway listening')).toMatchObject({ host: '::', adminHost: '127.0.0.1' });
  } finally {
    await stop(gw);
  }
});

test.each([
  ['HOST=0 (Node binds it to 0.0.0.0)', { HOST: '0' }],
  ['HOST=::ffff:0.0.0.0', { HOST: '::ffff:0.0.0.0' }],
])('%s without tokens: the admin port on 127.0.0.1 only', async (_name, env) => {
  const gw = await runGateway(DIRECTORY, { ...BASE, ...env });
  try {
    expect(boundAddress(gw.adminPort)).toBe('127.0.0.1');
    expect(boundAddress6(gw.adminPort)).toBeNull();
  } finally {
    await stop(gw);
  }
});

test('ADMIN_HOST=localhost without tokens: honoured, and bound to a loopback address', async () => {
  const gw = await runGateway(DIRECTORY, { ...BASE, HOST: '0.0.0.0', ADMIN_HOST: 'localhost' });
  try {
    const v4 = boundAddress(gw.adminPort);
    const v6 = boundAddress6(gw.adminPort);
    expect(v4 === null || v4.startsWith('127.')).toBe(true);
    expect(v6 === null || v6 === '00000000000000000000000001000000').toBe(true); // ::1
    expect(v4 ?? v6).not.toBeNull();
  } finally {
    await stop(gw);
  }
});

test.each(['0', '::ffff:0.0.0.0', '[::]', 'localhost.'])('ADMIN_HOST=%s without ADMIN_TOKENS_FILE: exit 1 with one line', async (adminHost) => {
  const err = await runGateway(DIRECTORY, { ...BASE, HOST: '127.0.0.1', ADMIN_HOST: adminHost }).then(
    async (gw) => {
      await stop(gw);
      throw new Error('the gateway started');
    },
    (e: { code: number; stderr: string }) => e,
  );
  expect(err.code).toBe(1);
  expect(err.stderr.trim().split('\n')).toHaveLength(1);
  expect(err.stderr).toMatch(/ADMIN_HOST.*ADMIN_TOKENS_FILE/);
});

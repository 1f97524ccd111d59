import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, send, sspHeaders, tempDir } from './test-kit';

/** The built gateway (dist/src/main.js, made by `npm test`'s build step) as a child process. */
export interface ChildGateway {
  child: ChildProcess;
  pid: number;
  proxyPort: number;
  adminPort: number;
  dir: string;
  directoryFile: string;
  stdout(): string;
  url(target: string): string;
  /** Resident set size now, from /proc, in bytes. */
  rssBytes(): number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const MAIN = join(REPO, 'dist', 'src', 'main.js');

/** Runs the gateway with `env` and resolves once it says it is listening (or rejects with its stderr). */
export function runGateway(directoryYamlText: string, env: Record<string, string> = {}): Promise<ChildGateway> {
  const dir = tempDir('gw-child-');
  const directoryFile = join(dir, 'directory.yaml');
  writeFileSync(directoryFile, directoryYamlText);
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO,
    // INTERACTION_CHECK off: these suites send any path under one interaction (its own suite turns it on).
    env: { PATH: process.env.PATH, PORT: '0', ADMIN_PORT: '0', DIRECTORY_FILE: directoryFile, DATA_DIR: join(dir, 'data'), INTERACTION_CHECK: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not say it was listening (LOG_LEVEL must be info or lower): ${err}${out}`));
    }, 15000);
    const poll = setInterval(() => {
      const line = out.split('\n').find((l) => l.includes('"gateway listening"'));
      if (!line) return;
      clearInterval(poll);
      clearTimeout(timer);
      const { proxyPort, adminPort } = JSON.parse(line);
      resolve({
        child,
        pid: child.pid!,
        proxyPort,
        adminPort,
        dir,
        directoryFile,
        stdout: () => out,
        url: (target) => `http://127.0.0.1:${proxyPort}/${target}`,
        rssBytes: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024,
        exited,
        kill: (signal = 'SIGTERM') => child.kill(signal),
      });
    }, 20);
    void exited.then(({ code }) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(Object.assign(new Error(`gateway exited with ${code}: ${err.trim()}`), { stderr: err, code }));
    });
  });
}

/** Samples a child's RSS every `everyMs` while `work` runs; returns the work's result and the peak RSS growth. */
export async function measureRssGrowth<T>(
  gw: ChildGateway,
  work: () => Promise<T>,
  everyMs = 20,
): Promise<{ result: T; baseline: number; peakGrowth: number }> {
  const baseline = gw.rssBytes();
  let peak = baseline;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, gw.rssBytes());
    } catch {
      /* process gone */
    }
  }, everyMs);
  try {
    const result = await work();
    peak = Math.max(peak, gw.rssBytes());
    return { result, baseline, peakGrowth: peak - baseline };
  } finally {
    clearInterval(timer);
  }
}

/** A metric's value from the child's /metrics (the first series of that name), or NaN. */
export async function metric(gw: ChildGateway, name: string): Promise<number> {
  const text = (await send(`http://127.0.0.1:${gw.adminPort}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/** The child's JSON log lines whose message matches. */
export function logLines(gw: ChildGateway, msg: RegExp): Array<Record<string, unknown>> {
  return gw
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => msg.test(String(l.msg)));
}

/** Sends `n` requests for `target` through the gateway one after another, each with a fresh trace ID, each answered 200; returns the trace IDs. */
export async function tracedRequests(gw: ChildGateway, target: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    ids.push(id);
    const status = (await send(gw.url(target), { headers: sspHeaders({ 'Ssp-TraceID': id }) })).status;
    if (status !== 200) throw new Error(`request ${i + 1} of ${n} (trace ${id}) answered ${status}, not 200`);
  }
  return ids;
}

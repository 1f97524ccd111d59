import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getText } from './metrics-kit';
import { requireProgram } from './system-programs';
import { REPO, freePort, tempDir } from './test-kit';

export const ALERTS_FILE = join(REPO, 'dashboards', 'prometheus', 'alerts.yml');

/** Runs promtool (Debian's prometheus package); its exit status and everything it printed. */
export function promtool(args: string[], input?: string): { status: number; output: string } {
  requireProgram('promtool');
  const run = spawnSync('promtool', args, { input, encoding: 'utf8', cwd: join(REPO, 'dashboards', 'prometheus') });
  if (run.error) throw new Error(`promtool could not run: ${run.error.message}`);
  return { status: run.status ?? -1, output: `${run.stdout}${run.stderr}` };
}

export interface PrometheusServer {
  url: string;
  /** An instant query over the HTTP API: the parsed JSON answer (status "success" or "error"). */
  query(
    promql: string,
  ): Promise<{ status: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }; error?: string }>;
  stop(): Promise<void>;
}

/**
 * A real Prometheus server on loopback, scraping `targets` (host:port of admin ports) every
 * second as job "spine-gateway", with the repository's alert rules loaded. Stopped by PID.
 */
export async function startPrometheus(targets: string[]): Promise<PrometheusServer> {
  requireProgram('prometheus');
  const dir = tempDir('prometheus-');
  copyFileSync(ALERTS_FILE, join(dir, 'alerts.yml'));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [alerts.yml]\nscrape_configs:\n  - job_name: spine-gateway\n    static_configs:\n      - targets: ${JSON.stringify(targets)}\n`,
  );
  const port = await freePort();
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${stderr}`);
    const ready = await getText(`${url}/-/ready`).catch(() => ({ status: 0 }));
    if (ready.status === 200) break;
    if (Date.now() > until) throw new Error(`prometheus did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async query(promql) {
      return JSON.parse((await getText(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)).text);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireProgram } from './system-programs';
import { REPO, freePort, send } from './test-kit';

/**
 * Debian's clickhouse-server (18.16, installed by .ci/run) on loopback, unprivileged,
 * with its own data folder, started and stopped by PID, as the network path's real peer.
 */
export interface ClickHouseServer {
  readonly httpPort: number;
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGKILL, waiting for the exit: a crash, and quick (a SIGTERM'd 18.16 may wait up to 10 s on open connections). */
  kill(): Promise<void>;
  /** Runs SQL over HTTP and returns the response text (throws on an HTTP error). */
  sql(query: string): Promise<string>;
}

export async function clickhouseServer(dir: string): Promise<ClickHouseServer> {
  requireProgram('clickhouse-server');
  for (const sub of ['tmp', 'uf', 'fs']) mkdirSync(join(dir, sub), { recursive: true });
  const [httpPort, tcpPort, interserverPort] = [await freePort(), await freePort(), await freePort()];
  let child: ChildProcess | null = null;
  const server: ClickHouseServer = {
    httpPort,
    url: `http://default@127.0.0.1:${httpPort}/spine_audit`,
    async start() {
      child = spawn(
        'clickhouse-server',
        [
          '--config-file=/etc/clickhouse-server/config.xml',
          '--',
          `--path=${dir}/`,
          `--tmp_path=${dir}/tmp/`,
          `--user_files_path=${dir}/uf/`,
          `--format_schema_path=${dir}/fs/`,
          `--logger.log=${dir}/log`,
          `--logger.errorlog=${dir}/err`,
          `--http_port=${httpPort}`,
          `--tcp_port=${tcpPort}`,
          `--interserver_http_port=${interserverPort}`,
          '--listen_host=127.0.0.1',
        ],
        { stdio: 'ignore', detached: true },
      );
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        try {
          if ((await send(`http://127.0.0.1:${httpPort}/ping`)).status === 200) return;
        } catch {
          /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`clickhouse-server did not start: ${readFileSync(join(dir, 'err'), 'utf8').slice(-500)}`);
    },
    async stop() {
      const c = child;
      if (c === null || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const killer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
      child = null;
    },
    async kill() {
      const c = child;
      if (c === null || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
      child = null;
    },
    async sql(query: string) {
      const r = await send(`http://127.0.0.1:${httpPort}/`, { method: 'POST', body: query });
      if (r.status !== 200) throw new Error(`clickhouse: ${r.body.toString().slice(0, 300)}`);
      return r.body.toString();
    },
  };
  return server;
}

/** The schema the old server accepts (schema management off: the test plays the DBA): transactions, and the seals and access log tables. */
export async function createOldServerSchema(server: ClickHouseServer, tables = ['transactions', 'audit-seals', 'access-log']): Promise<void> {
  await server.sql('CREATE DATABASE IF NOT EXISTS spine_audit');
  for (const t of tables) {
    const ddl = readFileSync(join(REPO, 'test', 'fixtures', 'clickhouse', `${t}-18.16.sql`), 'utf8');
    await server.sql(ddl.replace('CREATE TABLE ', 'CREATE TABLE IF NOT EXISTS '));
  }
}

/** Waits until the server has applied every ALTER ... UPDATE/DELETE (18.16 runs mutations in the background, with no mutations_sync). */
export async function mutationsDone(server: ClickHouseServer, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await server.sql('SELECT count() FROM system.mutations WHERE is_done = 0')).trim() === '0') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('clickhouse-server: mutations still running');
}

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { AuditStore } from '../../src/clickhouse';
import { REPO } from './test-kit';

/**
 * Changes a stopped gateway's embedded engine behind its back, from a child process (the
 * embedded engine opens one data directory per process): runs each statement in turn,
 * ALTER mutations synchronously. Runs the built copy of this file (dist/). `{db}` in the
 * SQL is the audit database.
 */
export function execDataDir(dataDir: string, statements: readonly string[]): void {
  execFileSync(process.execPath, [join(REPO, 'dist', 'test', 'helpers', 'chdb-exec.js'), dataDir, JSON.stringify(statements)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

async function main(dataDir: string, statements: string[]): Promise<void> {
  const store = new AuditStore({ url: undefined, dataDir, manageSchema: false, retentionDays: 30, timeoutMs: 30_000 });
  const client = (store as unknown as { client: ClickHouseClient }).client;
  try {
    for (const sql of statements)
      await client.command({
        query: sql.split('{db}').join(store.database),
        clickhouse_settings: { mutations_sync: '2', date_time_input_format: 'best_effort' },
      });
  } finally {
    await store.close();
  }
}

if (require.main === module) {
  main(process.argv[2], JSON.parse(process.argv[3]) as string[]).catch((err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}

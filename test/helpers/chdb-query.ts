import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { AuditStore } from '../../src/clickhouse';
import { REPO } from './test-kit';

/**
 * Queries the embedded engine of a stopped gateway's DATA_DIR from a child process (the
 * embedded engine allows one open data directory per process, so a test that looks at
 * several DATA_DIRs cannot open them in its own). Runs the built copy of this file
 * (dist/, made by `npx tsc -p tsconfig.json`). `{db}` in the SQL is the audit database.
 */
export function queryDataDir<T = Record<string, unknown>>(dataDir: string, sql: string): T[] {
  const out = execFileSync(process.execPath, [join(REPO, 'dist', 'test', 'helpers', 'chdb-query.js'), dataDir, sql], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(out) as T[];
}

async function main(dataDir: string, sql: string): Promise<void> {
  const store = new AuditStore({ url: undefined, dataDir, manageSchema: false, retentionDays: 30, timeoutMs: 30_000 });
  try {
    const rows = await store.queryRows(sql.split('{db}').join(store.database), {});
    process.stdout.write(JSON.stringify(rows));
  } finally {
    await store.close();
  }
}

if (require.main === module) {
  main(process.argv[2], process.argv[3]).catch((err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}

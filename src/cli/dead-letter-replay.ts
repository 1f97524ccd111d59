import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AuditStore } from '../clickhouse';
import { loadSettings } from '../config';
import { DataDirInUseError, DataDirLock } from '../data-dir';
import { decodeRecord } from '../spool';

/**
 * `spine-gateway audit replay-dead-letters` (and its older name, npm run
 * audit:replay-dead-letters): inserts every dead-letter file under
 * DATA_DIR/dead-letter into the audit store (same settings as the gateway), oldest
 * first, and deletes each file once ClickHouse has acknowledged it. Safe to run twice:
 * records carry their event id and the table keeps one row per transaction.
 * With the embedded engine, stop the gateway first (one process may open DATA_DIR/clickhouse).
 */
export async function replayDeadLetters(): Promise<number> {
  const settings = loadSettings();
  const dir = join(settings.DATA_DIR, 'dead-letter');
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => f.endsWith('.seg'))
      .sort();
  } catch {
    files = [];
  }
  if (files.length === 0) {
    process.stdout.write(`no dead-letter files in ${dir}\n`);
    return 0;
  }
  // The embedded engine opens DATA_DIR/clickhouse in one process at a time: a running gateway is told of plainly.
  let lock: DataDirLock | null = null;
  if (settings.CLICKHOUSE_URL === undefined) {
    try {
      lock = DataDirLock.acquire(settings.DATA_DIR);
    } catch (err) {
      if (!(err instanceof DataDirInUseError)) throw err;
      throw new Error(
        `DATA_DIR ${settings.DATA_DIR} is in use by a gateway (pid ${err.owner.pid}): stop it first, since the embedded engine opens DATA_DIR/clickhouse in one process at a time`,
        { cause: err },
      );
    }
  }
  const store = AuditStore.fromSettings(settings);
  let failed = 0;
  try {
    await store.prepare();
    for (const file of files) {
      let data: Buffer;
      try {
        data = readFileSync(join(dir, file));
      } catch (err) {
        failed++;
        process.stdout.write(`failed ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); kept, the others go on\n`);
        continue;
      }
      const lines: string[] = [];
      for (let offset = 0; ;) {
        const r = decodeRecord(data, offset);
        if (r.kind !== 'record') break;
        lines.push(r.payload.toString('utf8'));
        offset = r.next;
      }
      try {
        await store.insertLines(lines.join('\n'));
      } catch (err) {
        failed++;
        process.stdout.write(`failed ${file}: ${(err as Error).message} (kept; fix the cause and run again)\n`);
        continue;
      }
      try {
        unlinkSync(join(dir, file));
        process.stdout.write(`replayed ${file}: ${lines.length} records\n`);
      } catch (err) {
        // Inserted: a second replay is harmless (idempotent), so the file may simply be deleted by hand.
        failed++;
        process.stdout.write(
          `replayed ${file}: ${lines.length} records, but cannot delete it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); delete it by hand or run again\n`,
        );
      }
    }
  } finally {
    await store.close();
    lock?.release();
  }
  return failed === 0 ? 0 : 1;
}

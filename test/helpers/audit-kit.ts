import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { migrations, type AuditStore } from '../../src/clickhouse';
import { send, waitFor } from './test-kit';

/** Queries the gateway's own audit search API until `predicate` holds for the rows (shipping is asynchronous). */
export async function searchUntil(
  adminPort: number,
  query: string,
  predicate: (rows: Array<Record<string, unknown>>) => boolean,
  ms = 10_000,
): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + ms;
  let rows: Array<Record<string, unknown>> = [];
  while (Date.now() < deadline) {
    const r = await send(`http://127.0.0.1:${adminPort}/audit/transactions?${query}`);
    if (r.status === 200) {
      rows = JSON.parse(r.body.toString()).transactions;
      if (predicate(rows)) return rows;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`audit search "${query}" never matched; last rows: ${JSON.stringify(rows).slice(0, 500)}`);
}

/** Every file under `dir`, read as bytes (for privacy canary checks on the spool and logs). */
export function allFileBytes(dir: string): Array<{ path: string; bytes: Buffer }> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: p, bytes: readFileSync(p) });
    }
  };
  walk(dir);
  return out;
}

/** A GP Connect 1.x JWT (unsigned, as GP Connect sends them) built from the public example payload. */
export function exampleJwt(fixturesDir: string): string {
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(readFileSync(join(fixturesDir, 'jwt', 'jwt-payload-example.json'))).toString('base64url');
  return `${header}.${payload}.`;
}

/**
 * Waits until the shipper has applied every migration: a query that succeeds is not
 * enough, as the first table exists before the later migrations add their columns.
 */
export async function schemaReady(store: AuditStore, ms = 30_000): Promise<void> {
  const last = migrations[migrations.length - 1].version;
  await waitFor(
    async () => {
      try {
        const rows = await store.queryRows<{ v: number }>(`SELECT max(version) AS v FROM ${store.database}.schema_migrations`, {});
        return Number(rows[0]?.v) === last;
      } catch {
        return false; // the table is not there yet
      }
    },
    ms,
    `migration ${last} applied`,
    100,
  );
}

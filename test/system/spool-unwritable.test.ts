import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { chattr, diskFaultsUnavailable } from '../helpers/disk-faults';
import { directoryYaml, eventually, okHandler, send, sspHeaders, startProvider, tempDir, type TestProvider } from '../helpers/test-kit';
import { logLines, metric, runGateway, type ChildGateway } from '../helpers/child-gateway';

/**
 * Readiness tells the truth: with the current spool segment made
 * immutable (`chattr +i`; as root, chmod does not stop writes), what the consumer gets,
 * /readyz, spine_gateway_audit_writable, the log and the counters all agree, and it all
 * comes back by itself once the segment is writable again.
 */
const unavailable = diskFaultsUnavailable();
if (unavailable !== null) process.stdout.write(`spool-unwritable tests skipped: ${unavailable}\n`);
const suite = unavailable === null ? describe : describe.skip;

let provider: TestProvider;
const immutable: string[] = [];

beforeAll(async () => {
  provider = await startProvider(okHandler('{}'));
});
function lock(path: string): void {
  immutable.push(path);
  chattr('+i', path);
}

afterAll(async () => {
  for (const path of immutable) {
    try {
      chattr('-i', path);
    } catch {
      /* removed already */
    }
  }
  await provider?.close();
});

function start(mode: 'closed' | 'open', env: Record<string, string> = {}): Promise<ChildGateway> {
  return runGateway(directoryYaml({ metadata: provider.root }), { AUDIT_FAILURE_MODE: mode, AUDIT_BATCH_MAX_AGE_MS: '50', LOG_LEVEL: 'info', ...env });
}

async function stillAlive(gw: ChildGateway, ms: number): Promise<boolean> {
  const died = await Promise.race([gw.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), ms))]);
  return !died;
}

async function metricReaches(gw: ChildGateway, name: string, atLeast: number, ms = 15_000): Promise<number> {
  const deadline = Date.now() + ms;
  let value = await metric(gw, name);
  while (!(value >= atLeast) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    value = await metric(gw, name);
  }
  return value;
}

function get(gw: ChildGateway): Promise<{ id: string; status: number; body: string }> {
  const id = randomUUID();
  return new Promise((resolve) => {
    const req = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }), agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ id, status: res.statusCode!, body }));
    });
    req.on('error', () => resolve({ id, status: 0, body: '' }));
    req.end();
  });
}

/**
 * The segment the writer writes to: the newest one holding data (segments are preallocated,
 * and the next one is prepared ahead, so the newest file is usually still all zeros), or the
 * oldest when none holds any yet.
 */
function currentSegment(gw: ChildGateway): string {
  const spool = join(gw.dir, 'data', 'spool');
  const segments = readdirSync(spool)
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .map((n) => join(spool, n));
  const holding = segments.filter((path) => {
    const head = readFileSync(path).subarray(0, 8);
    return head.length === 8 && !head.equals(Buffer.alloc(8));
  });
  return holding.length > 0 ? holding[holding.length - 1] : segments[0];
}

async function stop(gw: ChildGateway): Promise<void> {
  if (gw.child.exitCode === null && gw.child.signalCode === null) gw.kill('SIGTERM');
  await gw.exited;
}

suite('an unwritable spool segment', () => {
  test('closed mode: 503s, /readyz 503 and the gauge 0 agree; one log line names EPERM; a refused request is counted once; all recovers by itself', async () => {
    const gw = await start('closed');
    const segment = currentSegment(gw);
    try {
      expect((await get(gw)).status).toBe(200);
      expect(await metric(gw, 'spine_gateway_audit_writable')).toBe(1);
      const droppedBefore = await metric(gw, 'spine_gateway_audit_records_dropped_total');
      immutable.push(segment);
      chattr('+i', segment);

      const refused: Array<Awaited<ReturnType<typeof get>>> = [];
      for (let i = 0; i < 30; i++) refused.push(await get(gw));
      expect(refused.map((r) => r.status)).toEqual(Array(30).fill(503));
      expect(JSON.parse(refused[0].body).issue[0].details.coding[0].display).toBe('AUDIT_UNAVAILABLE');
      const ready = await send(`http://127.0.0.1:${gw.adminPort}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body.toString()).toContain('EPERM');
      expect(await metric(gw, 'spine_gateway_audit_writable')).toBe(0);
      const down = logLines(gw, /audit spool not writable/);
      expect(down).toHaveLength(1);
      expect(down[0]).toMatchObject({ code: 'EPERM' });
      // Each refusal counted once, as a refusal; its record is held for the disk, not dropped.
      expect(await metric(gw, 'spine_gateway_refusals_total{code="AUDIT_UNAVAILABLE"}')).toBe(30);
      expect((await metric(gw, 'spine_gateway_audit_records_dropped_total')) - droppedBefore).toBe(0);
      expect(await metric(gw, 'spine_gateway_audit_records_held')).toBeGreaterThanOrEqual(30);

      chattr('-i', segment);
      await eventually(() => logLines(gw, /audit spool writable again/).length === 1, 5000, 'the recovery log line');
      expect((await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).status).toBe(200);
      expect(await metric(gw, 'spine_gateway_audit_writable')).toBe(1);
      expect(await metric(gw, 'spine_gateway_audit_records_held')).toBe(0);
      expect((await get(gw)).status).toBe(200);
      expect(logLines(gw, /audit spool not writable/)).toHaveLength(1);
      // The refusals' records were written after all, and reach the store.
      // A search can meet a busy store (503, try again): poll until the row is there or the deadline passes.
      const search = async (): Promise<{ status: number; rows: unknown[] }> => {
        const r = await send(`http://127.0.0.1:${gw.adminPort}/audit/transactions?trace_id=${refused[29].id}`);
        const body = JSON.parse(r.body.toString()) as { transactions?: unknown[] };
        return { status: r.status, rows: body.transactions ?? [] };
      };
      const deadline = Date.now() + 15_000;
      let found = await search();
      while (found.rows.length === 0 && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 100));
        found = await search();
      }
      expect(found.status).toBe(200);
      const rows = found.rows;
      expect(rows[0]).toMatchObject({ outcome: 'denied', error_code: 'AUDIT_UNAVAILABLE', status: 503 });
    } finally {
      try {
        chattr('-i', segment);
      } catch {
        /* done */
      }
      await stop(gw);
    }
  }, 90_000);

  test('open mode: keeps serving and stays ready, the gauge says 0, each forwarded request without its in-flight record is dropped once', async () => {
    const gw = await start('open');
    const segment = currentSegment(gw);
    try {
      expect((await get(gw)).status).toBe(200);
      immutable.push(segment);
      chattr('+i', segment);
      const served = [];
      for (let i = 0; i < 10; i++) served.push(await get(gw));
      expect(served.every((r) => r.status === 200)).toBe(true);
      expect((await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).status).toBe(200);
      expect(await metric(gw, 'spine_gateway_audit_writable')).toBe(0);
      expect(logLines(gw, /audit spool not writable/)).toHaveLength(1);
      const dropped = await metric(gw, 'spine_gateway_audit_records_dropped_total');
      expect(dropped).toBeGreaterThanOrEqual(9); // the first may have been in the write that failed (held, not dropped)
      expect(dropped).toBeLessThanOrEqual(10);
      chattr('-i', segment);
      await eventually(() => logLines(gw, /audit spool writable again/).length === 1, 5000, 'the recovery log line');
      expect(await metric(gw, 'spine_gateway_audit_records_held')).toBe(0);
    } finally {
      try {
        chattr('-i', segment);
      } catch {
        /* done */
      }
      await stop(gw);
    }
  }, 90_000);

  test('a dead-letter folder that refuses files: the shipper keeps the batch, says so once, never dies, and dead-letters it once writable', async () => {
    const dataDir = tempDir('gw-deadletter-');
    const deadLetters = join(dataDir, 'dead-letter');
    mkdirSync(deadLetters, { recursive: true });
    lock(deadLetters);
    // No schema management and no table: every insert fails permanently, so every batch goes to a dead letter.
    const gw = await start('closed', { DATA_DIR: dataDir, AUDIT_SCHEMA_MANAGEMENT: 'false' });
    try {
      for (let i = 0; i < 5; i++) expect((await get(gw)).status).toBe(200);
      // Old code: the EPERM from writeFileSync rejected the shipper's loop, unhandled, and ended the process.
      expect(await stillAlive(gw, 1500)).toBe(true);
      const said = logLines(gw, /writing a dead-letter file failed/);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatchObject({ code: 'EPERM' });
      expect(await metric(gw, 'spine_gateway_audit_records_dead_lettered_total')).toBe(0);
      expect((await get(gw)).status).toBe(200); // proxying is unaffected
      chattr('-i', deadLetters);
      expect(await metricReaches(gw, 'spine_gateway_audit_records_dead_lettered_total', 12)).toBe(12);
      expect(readdirSync(deadLetters).length).toBeGreaterThan(0);
      await eventually(() => logLines(gw, /writing a dead-letter file works again/).length === 1, 5000, 'the recovery log line');
    } finally {
      chattr('-i', deadLetters);
      await stop(gw);
    }
    expect(gw.child.exitCode).toBe(0);
  }, 90_000);

  test('a checkpoint that cannot be saved: shipping goes on, one log line, requests still served, saved again once possible', async () => {
    const gw = await start('closed');
    const checkpoint = join(gw.dir, 'data', 'spool', 'checkpoint.json');
    try {
      expect((await get(gw)).status).toBe(200);
      expect(await metricReaches(gw, 'spine_gateway_audit_records_shipped_total', 2)).toBeGreaterThanOrEqual(2);
      await eventually(() => readdirSync(join(gw.dir, 'data', 'spool')).includes('checkpoint.json'), 5000, 'a checkpoint');
      lock(checkpoint);
      for (let i = 0; i < 5; i++) expect((await get(gw)).status).toBe(200);
      expect(await metricReaches(gw, 'spine_gateway_audit_records_shipped_total', 12)).toBeGreaterThanOrEqual(12);
      // Old code: the EPERM from writeCheckpoint ended the process.
      expect(await stillAlive(gw, 1000)).toBe(true);
      const said = logLines(gw, /saving the checkpoint failed/);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatchObject({ code: 'EPERM' });
      // The spool itself still takes records: ready, and no spool episode.
      expect((await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).status).toBe(200);
      expect(logLines(gw, /audit spool not writable/)).toHaveLength(0);
      chattr('-i', checkpoint);
      expect((await get(gw)).status).toBe(200);
      await eventually(() => logLines(gw, /saving the checkpoint works again/).length === 1, 5000, 'the recovery log line');
    } finally {
      try {
        chattr('-i', checkpoint);
      } catch {
        /* done */
      }
      await stop(gw);
    }
    expect(gw.child.exitCode).toBe(0);
  }, 90_000);

  test('a shipped segment that cannot be deleted (chattr +a): kept and reported once, traffic unaffected, deleted once possible', async () => {
    // Short seal periods: a shipped segment is deleted once its records are sealed too.
    const gw = await start('closed', { AUDIT_SEGMENT_BYTES: '4096', AUDIT_SEAL_PERIOD_MS: '1000' });
    const segment = currentSegment(gw);
    const appendOnly = () => {
      try {
        chattr('-a', segment);
      } catch {
        /* deleted */
      }
    };
    try {
      // Append-only: the writer appends as usual, but nobody may delete the file.
      chattr('+a', segment);
      for (let i = 0; i < 10; i++) expect((await get(gw)).status).toBe(200);
      await eventually(() => logLines(gw, /deleting a shipped segment failed/).length === 1, 10_000, 'the deletion failure line');
      expect(logLines(gw, /deleting a shipped segment failed/)[0]).toMatchObject({ code: 'EPERM' });
      // Old code: the EPERM from unlinkSync ended the process.
      expect(await stillAlive(gw, 1000)).toBe(true);
      for (let i = 0; i < 5; i++) expect((await get(gw)).status).toBe(200);
      expect((await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).status).toBe(200);
      expect(logLines(gw, /deleting a shipped segment failed/)).toHaveLength(1);
      appendOnly();
      await eventually(() => logLines(gw, /deleting a shipped segment works again/).length === 1, 10_000, 'the recovery line');
      await eventually(() => !readdirSync(join(gw.dir, 'data', 'spool')).includes(segment.split('/').pop()!), 5000, 'the segment to be deleted');
    } finally {
      appendOnly();
      await stop(gw);
    }
    expect(gw.child.exitCode).toBe(0);
  }, 90_000);
});

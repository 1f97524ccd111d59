import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { diskFaultsUnavailable, fillDisk, mountTmpfs, unmountTmpfs } from '../helpers/disk-faults';
import { directoryYaml, eventually, send, sspHeaders, startProvider, tempDir, type TestProvider } from '../helpers/test-kit';
import { logLines, metric, runGateway, type ChildGateway } from '../helpers/child-gateway';

/**
 * DATA_DIR/spool on a 2 MiB tmpfs that fills up. A full disk must never
 * end the process or stop it starting; it is the audit failure mode's business (closed:
 * 503 and not ready; open: serve and count), said once in the log with its cause, and it
 * recovers by itself when space returns, with every record shipped. A reply the
 * consumer received completely is recorded as what it was, never `interrupted`.
 */
const unavailable = diskFaultsUnavailable();
if (unavailable !== null) process.stdout.write(`full-disk tests skipped: ${unavailable}\n`);
const suite = unavailable === null ? describe : describe.skip;

/** 40 bytes. */
const BODY = '{"resourceType":"CapabilityStatement"}  ';
const MOUNT_BYTES = 2 * 1024 * 1024;
const mounted: string[] = [];
let provider: TestProvider;
/** Trace IDs whose response the provider holds until released. */
const held = new Map<string, () => void>();

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    const id = String(req.headers['ssp-traceid']);
    const answer = () => {
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': String(BODY.length) });
      res.end(BODY);
    };
    if (id.startsWith('00000000')) held.set(id, answer);
    else answer();
  });
});
afterAll(async () => {
  for (const dir of mounted) unmountTmpfs(dir);
  await provider?.close();
});

/** A DATA_DIR whose spool folder is a fresh 2 MiB tmpfs (the embedded ClickHouse stays on the ordinary disk). */
function dataDirWithTinySpool(): { dataDir: string; spool: string } {
  const dataDir = tempDir('gw-fulldisk-');
  const spool = join(dataDir, 'spool');
  mountTmpfs(spool, MOUNT_BYTES);
  mounted.push(spool);
  return { dataDir, spool };
}

function start(dataDir: string, mode: 'closed' | 'open'): Promise<ChildGateway> {
  return runGateway(directoryYaml({ metadata: provider.root }), {
    DATA_DIR: dataDir,
    AUDIT_FAILURE_MODE: mode,
    AUDIT_BATCH_MAX_AGE_MS: '50',
    AUDIT_SEGMENT_BYTES: '65536',
    LOG_LEVEL: 'info',
  });
}

function get(gw: ChildGateway, id: string = randomUUID()): Promise<{ id: string; status: number; body: string; complete: boolean }> {
  return new Promise((resolve) => {
    const req = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }), agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ id, status: res.statusCode!, body, complete: res.complete }));
      res.on('error', () => resolve({ id, status: res.statusCode!, body, complete: false }));
    });
    req.on('error', () => resolve({ id, status: 0, body: '', complete: false }));
    req.end();
  });
}

async function readyz(gw: ChildGateway): Promise<number> {
  return (await send(`http://127.0.0.1:${gw.adminPort}/readyz`)).status;
}

async function recordOf(gw: ChildGateway, id: string, ms = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await send(`http://127.0.0.1:${gw.adminPort}/audit/transactions?trace_id=${id}`);
    if (r.status === 200) {
      const rows = JSON.parse(r.body.toString()).transactions as Array<Record<string, unknown>>;
      if (rows.length > 0 && rows[0].outcome !== 'in_flight') return rows[0];
    }
    if (Date.now() > deadline) throw new Error(`no final record for ${id}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stillAlive(gw: ChildGateway, ms: number): Promise<boolean> {
  const died = await Promise.race([gw.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), ms))]);
  return !died;
}

async function stop(gw: ChildGateway): Promise<void> {
  if (gw.child.exitCode === null && gw.child.signalCode === null) gw.kill('SIGTERM');
  await gw.exited;
}

suite('a full spool disk', () => {
  test('closed mode: 503 and not ready, one log line naming ENOSPC, never dies; recovers by itself; every record shipped, the completed reply as forwarded', async () => {
    const { dataDir, spool } = dataDirWithTinySpool();
    const gw = await start(dataDir, 'closed');
    try {
      const before = await get(gw);
      expect(before.status).toBe(200);
      // A transaction in flight when the disk fills: its in-flight record is on disk, its reply not yet sent.
      const slowId = `00000000-0000-4000-8000-${String(Date.now()).slice(-12)}`;
      const slow = get(gw, slowId);
      await eventually(() => held.has(slowId), 5000, 'the slow request to reach the provider');

      const filler = fillDisk(spool);
      held.get(slowId)!(); // the provider answers: the consumer receives a complete 200
      const slowReply = await slow;
      expect(slowReply).toMatchObject({ status: 200, complete: true });

      const during: number[] = [];
      for (let i = 0; i < 10; i++) during.push((await get(gw)).status);
      expect(during.filter((s) => s === 200).length).toBeLessThanOrEqual(2); // a record or two may fit in a page's tail
      const refused = await get(gw);
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body).issue[0].details.coding[0].display).toBe('AUDIT_UNAVAILABLE');
      expect(await readyz(gw)).toBe(503);
      expect(await metric(gw, 'spine_gateway_audit_writable')).toBe(0);
      // Old code: an uncaught ENOSPC from writeCheckpoint ended the process within about a second.
      expect(await stillAlive(gw, 1500)).toBe(true);
      for (let i = 0; i < 5; i++) expect((await get(gw)).status).toBe(503);
      const down = logLines(gw, /audit spool not writable/);
      expect(down).toHaveLength(1);
      expect(down[0]).toMatchObject({ code: 'ENOSPC' });

      rmSync(filler);
      await eventually(() => logLines(gw, /audit spool writable again/).length === 1, 10_000, 'the recovery log line');
      expect(await readyz(gw)).toBe(200);
      const after = await get(gw);
      expect(after.status).toBe(200);
      expect(logLines(gw, /audit spool not writable/)).toHaveLength(1);

      // Every record reaches ClickHouse; the reply the consumer received completely is `forwarded`, with its bytes.
      expect(await recordOf(gw, slowId)).toMatchObject({ outcome: 'forwarded', status: 200, response_bytes: 40 });
      expect(await recordOf(gw, refused.id)).toMatchObject({ outcome: 'denied', status: 503, error_code: 'AUDIT_UNAVAILABLE' });
      expect(await recordOf(gw, before.id)).toMatchObject({ outcome: 'forwarded' });
      expect(await recordOf(gw, after.id)).toMatchObject({ outcome: 'forwarded' });
      await eventually(() => true);
      expect(await metric(gw, 'spine_gateway_audit_records_held')).toBe(0);
      expect(await metric(gw, 'spine_gateway_audit_records_dropped_total')).toBe(0);
    } finally {
      await stop(gw);
    }
    expect(gw.child.exitCode).toBe(0);
  }, 90_000);

  test('open mode: keeps serving (and stays ready) while full, counts, recovers by itself with every final record shipped', async () => {
    const { dataDir, spool } = dataDirWithTinySpool();
    const gw = await start(dataDir, 'open');
    try {
      expect((await get(gw)).status).toBe(200);
      const filler = fillDisk(spool);
      const during = [];
      for (let i = 0; i < 12; i++) during.push(await get(gw));
      expect(during.every((r) => r.status === 200)).toBe(true);
      expect(await stillAlive(gw, 1500)).toBe(true);
      expect(await readyz(gw)).toBe(200);
      expect(await metric(gw, 'spine_gateway_audit_writable')).toBe(0);
      expect(await metric(gw, 'spine_gateway_audit_records_dropped_total')).toBeGreaterThan(0); // in-flight records that never were
      expect(logLines(gw, /audit spool not writable/)).toHaveLength(1);
      rmSync(filler);
      await eventually(() => logLines(gw, /audit spool writable again/).length === 1, 10_000, 'the recovery log line');
      for (const r of during) expect(await recordOf(gw, r.id)).toMatchObject({ outcome: 'forwarded', status: 200 });
    } finally {
      await stop(gw);
    }
    expect(gw.child.exitCode).toBe(0);
  }, 90_000);

  test('start-up on a full disk: comes up (closed: not ready, 503; says why in one line), recovers by itself, the interrupted transaction recorded', async () => {
    const { dataDir, spool } = dataDirWithTinySpool();
    const first = await start(dataDir, 'closed');
    const inFlightId = `00000000-0000-4000-8000-${String(Date.now() + 1).slice(-12)}`;
    void get(first, inFlightId);
    await eventually(() => held.has(inFlightId), 5000, 'the request to reach the provider');
    first.kill('SIGKILL'); // its in-flight record has no final record: recovery must write `interrupted`
    await first.exited;
    const filler = fillDisk(spool);

    // Old code: "spine-gateway: cannot start: ENOSPC ..." and exit 1.
    const gw = await start(dataDir, 'closed');
    try {
      if (process.env.DEBUG_FULLDISK) process.stdout.write(gw.stdout());
      expect(await readyz(gw)).toBe(503);
      const refused = await get(gw);
      expect(refused.status).toBe(503);
      const why = logLines(gw, /audit spool not writable/);
      expect(why).toHaveLength(1);
      expect(why[0]).toMatchObject({ code: 'ENOSPC' });
      rmSync(filler);
      await eventually(() => logLines(gw, /audit spool writable again/).length === 1, 10_000, 'the recovery log line');
      expect(await readyz(gw)).toBe(200);
      expect((await get(gw)).status).toBe(200);
      expect(await recordOf(gw, inFlightId)).toMatchObject({ outcome: 'interrupted' });
      expect(await recordOf(gw, refused.id)).toMatchObject({ outcome: 'denied', error_code: 'AUDIT_UNAVAILABLE' });
    } finally {
      await stop(gw);
    }
  }, 90_000);

  test('start-up on a full disk in open mode: serving at once', async () => {
    const { dataDir, spool } = dataDirWithTinySpool();
    const first = await start(dataDir, 'open');
    expect((await get(first)).status).toBe(200);
    await stop(first);
    const filler = fillDisk(spool);
    const gw = await start(dataDir, 'open');
    try {
      expect(await readyz(gw)).toBe(200);
      const served = await get(gw);
      expect(served.status).toBe(200);
      rmSync(filler);
      await eventually(() => logLines(gw, /audit spool writable again/).length === 1, 10_000, 'the recovery log line');
      expect(await recordOf(gw, served.id)).toMatchObject({ outcome: 'forwarded' });
    } finally {
      await stop(gw);
    }
  }, 90_000);

  test('under load, the disk fills and empties three times: never dies, and every answered request is recorded once, each 200 as forwarded', async () => {
    const { dataDir, spool } = dataDirWithTinySpool();
    const gw = await start(dataDir, 'closed');
    const answered = new Map<string, number>();
    let running = true;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const one = () =>
      new Promise<void>((resolve) => {
        const id = randomUUID();
        const req = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': id }), agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.complete) answered.set(id, res.statusCode!);
            resolve();
          });
          res.on('error', () => resolve());
        });
        req.on('error', () => resolve());
        req.end();
      });
    const loops = Array.from({ length: 8 }, async () => {
      for (let n = 0; running && n < 5000; n++) await one();
    });
    try {
      for (let round = 0; round < 3; round++) {
        await new Promise((r) => setTimeout(r, 300));
        const filler = fillDisk(spool);
        await new Promise((r) => setTimeout(r, 700));
        expect(gw.child.exitCode).toBeNull();
        rmSync(filler);
      }
      await new Promise((r) => setTimeout(r, 300));
      running = false;
      await Promise.all(loops);
      agent.destroy();
      const statuses = [...answered.values()];
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(20);
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
      // Every answered request reaches ClickHouse once, as what the consumer got.
      const deadline = Date.now() + 30_000;
      let rows: Array<Record<string, unknown>> = [];
      for (;;) {
        rows = [];
        let cursor = '';
        for (let page = 0; page < 100; page++) {
          const r = await send(`http://127.0.0.1:${gw.adminPort}/audit/transactions?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
          const body = JSON.parse(r.body.toString());
          rows.push(...body.transactions);
          if (!body.next_cursor) break;
          cursor = body.next_cursor;
        }
        const found = new Set(rows.filter((r) => r.outcome !== 'in_flight').map((r) => String(r.trace_id)));
        const missing = [...answered.keys()].filter((id) => !found.has(id)).length;
        const dropped = await metric(gw, 'spine_gateway_audit_records_dropped_total');
        if (missing === 0 || (missing <= dropped && (await metric(gw, 'spine_gateway_audit_records_pending')) === 0) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const byId = new Map<string, Array<Record<string, unknown>>>();
      for (const r of rows) byId.set(String(r.trace_id), [...(byId.get(String(r.trace_id)) ?? []), r]);
      // A refusal's record may have been given up on (the refusals flood a 16 MiB hold in
      // seconds here): then it is counted as dropped. A 200's record never is.
      const refusalsMissing = [...answered].filter(([id, status]) => status === 503 && !byId.has(id)).length;
      const wrong = [...answered].filter(([id, status]) => {
        const found = byId.get(id) ?? [];
        if (status === 503 && found.length === 0) return false;
        if (found.length !== 1) return true;
        return status === 200 ? found[0].outcome !== 'forwarded' || found[0].status !== 200 : found[0].error_code !== 'AUDIT_UNAVAILABLE';
      });
      expect(wrong.map(([id, status]) => ({ id, status, rows: byId.get(id)?.map((r) => [r.outcome, r.status]) }))).toEqual([]);
      expect(refusalsMissing).toBeLessThanOrEqual(await metric(gw, 'spine_gateway_audit_records_dropped_total'));
      process.stdout.write(
        `full-disk load test: ${answered.size} answered (${statuses.filter((s) => s === 200).length} x 200), ${logLines(gw, /audit spool not writable/).length} episodes, ${refusalsMissing} refusal records dropped\n`,
      );
    } finally {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      await stop(gw);
    }
    expect(gw.child.exitCode).toBe(0);
  }, 120_000);
});

import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, openSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecord } from '../../../src/spool/framing';
import {
  AuditSpool,
  HELD_LOW_PRIORITY_BYTES,
  HELD_MAX_BYTES,
  SpoolWriter,
  listSegments,
  readBatch,
  readCheckpoint,
  recoverSpool,
  segmentPath,
  type SpoolHealth,
} from '../../../src/spool';
import { chattr, diskFaultsUnavailable } from '../../helpers/disk-faults';
import { eventually, tempDir } from '../../helpers/test-kit';

/**
 * The spool writer under real file-system faults (chattr +i as root): nothing throws, the
 * health says why, final records are held and written when the disk recovers, and it
 * recovers by itself.
 */
const unavailable = diskFaultsUnavailable();
if (unavailable !== null) process.stdout.write(`spool fault tests skipped: ${unavailable}\n`);
const suite = unavailable === null ? describe : describe.skip;

const rec = (i: number) => JSON.stringify({ event_id: `e${i}`, version: 2 });
const ids = (payloads: Buffer[]) => payloads.map((p) => JSON.parse(p.toString()).event_id);
const locked: string[] = [];

function lock(path: string): void {
  locked.push(path);
  chattr('+i', path);
}
function unlock(path: string): void {
  chattr('-i', path);
}
afterAll(() => {
  for (const path of locked) {
    try {
      chattr('-i', path);
    } catch {
      /* gone */
    }
  }
});

async function openWriter(dir: string, events: Array<SpoolHealth['state'] | string>, options: { segmentBytes?: number } = {}) {
  const report = recoverSpool(dir);
  return SpoolWriter.open(
    {
      dir,
      segmentBytes: options.segmentBytes ?? 1 << 20,
      maxBytes: 1 << 30,
      onHealth: (h) => events.push(h.state === 'healthy' ? 'healthy' : h.code),
    },
    report.tail.segment,
    report.tail.size,
    report.totalBytes,
  );
}

async function readAll(dir: string, writer: SpoolWriter): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let position = readCheckpoint(dir, listSegments(dir));
  for (let i = 0; i < 1000; i++) {
    const batch = await readBatch(dir, position, writer.durableEnd, 100);
    out.push(...batch.payloads);
    if (batch.payloads.length === 0 && batch.next.segment === position.segment && batch.next.offset === position.offset) break;
    position = batch.next;
  }
  return out;
}

const appendWritten = (writer: SpoolWriter, record: string, priority = true) =>
  new Promise<Error | undefined>((resolve) => writer.appendWritten(record, resolve, priority));

suite('SpoolWriter under file-system faults', () => {
  test('an immutable segment: EPERM, failing once, final records held in order, and back by itself with them written', async () => {
    const dir = tempDir('spool-eperm-');
    const events: string[] = [];
    const writer = await openWriter(dir, events);
    await writer.append(rec(0));
    lock(segmentPath(dir, 1));

    // The first write to fail: the awaited record is refused (held, as it was in the failed write), the final one held.
    const first = writer.append(rec(1));
    const second = appendWritten(writer, rec(2));
    await expect(first).rejects.toMatchObject({ code: 'GW_ERR_SPOOL_UNAVAILABLE', reason: 'EPERM', held: true });
    expect(await second).toBeUndefined();
    expect(writer.writable).toBe(false);
    expect(writer.health).toMatchObject({ state: 'failing', code: 'EPERM' });
    // While failing: in-flight records refused at once, final records held.
    await expect(writer.append(rec(3))).rejects.toMatchObject({ code: 'GW_ERR_SPOOL_UNAVAILABLE', held: false });
    expect(await appendWritten(writer, rec(4))).toBeUndefined();
    expect(writer.heldRecords).toBe(3);
    await new Promise((r) => setTimeout(r, 300)); // several probes fail meanwhile: still one event
    expect(events).toEqual(['EPERM']);

    unlock(segmentPath(dir, 1));
    await eventually(() => writer.writable, 3000, 'the writer to recover');
    expect(events).toEqual(['EPERM', 'healthy']);
    expect(writer.heldRecords).toBe(0);
    await writer.append(rec(5));
    expect(ids(await readAll(dir, writer))).toEqual(['e0', 'e1', 'e2', 'e4', 'e5']);
    expect(writer.recordsDiscarded).toBe(0);
    await writer.close();
  });

  test('rotation into a folder that refuses new files: failing, never a write to a retired descriptor; recovers by itself', async () => {
    const dir = tempDir('spool-rotate-');
    const events: string[] = [];
    const writer = await openWriter(dir, events, { segmentBytes: 4096 });
    for (let i = 0; i < 20; i++) await writer.append(rec(i));
    lock(dir);
    const results: Array<'ok' | string> = [];
    for (let i = 20; i < 200; i++) {
      results.push(
        await writer.append(rec(i)).then(
          () => 'ok',
          (err) => String(err.reason ?? err.code),
        ),
      );
    }
    expect(results).toContain('EPERM');
    expect(results.filter((r) => r !== 'ok' && r !== 'EPERM')).toEqual([]);
    expect(writer.health).toMatchObject({ state: 'failing', code: 'EPERM' });
    unlock(dir);
    await eventually(() => writer.writable, 3000, 'the writer to recover');
    await writer.append(rec(999));
    const got = ids(await readAll(dir, writer));
    // Everything acknowledged, plus the held records of the failed write, once each, in order; no torn bytes anywhere.
    const acked = results.map((r, i) => (r === 'ok' ? `e${i + 20}` : null)).filter((x) => x !== null);
    for (const id of [...acked, 'e999']) expect(got).toContain(id);
    expect(new Set(got).size).toBe(got.length);
    expect(recoverSpool(dir).badTails).toEqual([]);
    await writer.close();
  });

  test('the hold is bounded: records past HELD_MAX_BYTES are dropped and counted, and so is what is still held at close', async () => {
    const dir = tempDir('spool-hold-');
    const writer = await openWriter(dir, []);
    lock(segmentPath(dir, 1));
    const big = (i: number) => JSON.stringify({ event_id: `b${i}`, pad: 'x'.repeat(900 * 1024) });
    await writer.append(big(0)).catch(() => {});
    // Refusals (no priority) fill three quarters at most; final records of forwarded replies still find room.
    const low = Math.ceil(HELD_LOW_PRIORITY_BYTES / (900 * 1024)) + 2;
    for (let i = 1; i <= low; i++) await appendWritten(writer, big(i), false);
    expect(writer.heldBytes).toBeLessThanOrEqual(HELD_LOW_PRIORITY_BYTES);
    expect(writer.recordsDiscarded).toBeGreaterThan(0);
    const lowDiscarded = writer.recordsDiscarded;
    expect(await appendWritten(writer, big(low + 1))).toBeUndefined();
    expect(writer.recordsDiscarded).toBe(lowDiscarded);
    const n = Math.ceil(HELD_MAX_BYTES / (900 * 1024)) + 3;
    for (let i = low + 2; i <= n; i++) await appendWritten(writer, big(i));
    expect(writer.heldBytes).toBeLessThanOrEqual(HELD_MAX_BYTES);
    expect(writer.recordsDiscarded).toBeGreaterThan(0);
    const held = writer.heldRecords;
    expect(held + writer.recordsDiscarded).toBe(n + 1);
    const discarded = writer.recordsDiscarded;
    await writer.close(); // the disk never came back: what is held is given up, and counted
    expect(writer.recordsDiscarded).toBe(discarded + held);
    unlock(segmentPath(dir, 1));
  });
});

suite('AuditSpool.open under file-system faults', () => {
  test('a torn tail that cannot be cut (immutable segment): start-up goes on failing, then recovers and writes the interrupted record', async () => {
    const dir = tempDir('spool-deferred-');
    const begin = JSON.stringify({ event_id: '11111111-1111-4111-8111-111111111111', version: 1, outcome: 'in_flight', status: 0 });
    appendFileSync(segmentPath(dir, 1), encodeRecord(Buffer.from(begin)));
    appendFileSync(segmentPath(dir, 1), encodeRecord(Buffer.from(rec(7))).subarray(0, 9)); // torn by a crash
    lock(segmentPath(dir, 1));
    const events: string[] = [];
    let late = 0;
    // Old code: open() threw EPERM from truncateSync, and the gateway could not start.
    const { spool, recovery } = await AuditSpool.open({
      dir,
      segmentBytes: 1 << 20,
      maxBytes: 1 << 30,
      deadlineMs: 2000,
      commitDelayMs: 0,
      context: { instance: 'test', environment: 'test' },
      onHealth: (h) => events.push(h.state === 'healthy' ? 'healthy' : h.code),
      onDeferredRecovery: (r) => (late = r.interrupted),
    });
    expect(recovery).toBeNull();
    expect(spool.writable).toBe(false);
    expect(events).toEqual(['EPERM']);
    unlock(segmentPath(dir, 1));
    await eventually(() => spool.writable, 3000, 'the deferred recovery');
    expect(late).toBe(1);
    let records: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 100 && records.length < 2; i++) {
      records = (await readAll(dir, spool.writer)).map((p) => JSON.parse(p.toString()));
      if (records.length < 2) await new Promise((r) => setTimeout(r, 20));
    }
    expect(records.map((r) => [r.event_id, r.outcome])).toEqual([
      ['11111111-1111-4111-8111-111111111111', 'in_flight'],
      ['11111111-1111-4111-8111-111111111111', 'interrupted'],
    ]);
    expect(readFileSync(segmentPath(dir, 1)).length).toBe(statSync(segmentPath(dir, 1)).size);
    expect(recoverSpool(dir).badTails).toEqual([]);
    await spool.close();
  });
});

describe('a disk that stalls', () => {
  test('final records offered while stalled are held, and written once the disk answers', async () => {
    const dir = tempDir('spool-stall-hold-');
    const events: string[] = [];
    const report = recoverSpool(dir);
    const writer = await SpoolWriter.open(
      { dir, segmentBytes: 1 << 20, maxBytes: 1 << 30, deadlineMs: 100, onHealth: (h) => events.push(h.state === 'healthy' ? 'healthy' : h.code) },
      report.tail.segment,
      report.tail.size,
      report.totalBytes,
    );
    // Every libuv pool thread blocks in open() on a FIFO: the fdatasync queues behind them as behind a hung disk.
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const fifos = Array.from({ length: poolSize }, (_, i) => join(dir, `fifo${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const readers = fifos.map((f) => fsp.open(f, 'r'));
    await expect(writer.append(rec(1))).rejects.toMatchObject({ code: 'GW_ERR_SPOOL_TIMEOUT', pending: true });
    expect(await appendWritten(writer, rec(2))).toBeUndefined(); // held, not dropped
    expect(writer.heldRecords).toBe(1);
    await expect(writer.append(rec(3))).rejects.toMatchObject({ code: 'GW_ERR_SPOOL_UNAVAILABLE', reason: 'GW_ERR_SPOOL_TIMEOUT' });
    expect(events).toEqual(['GW_ERR_SPOOL_TIMEOUT']);
    const writers = fifos.map((f) => openSync(f, 'w'));
    for (const handle of await Promise.all(readers)) await handle.close();
    for (const fd of writers) closeSync(fd);
    await eventually(() => writer.writable && events.length === 2, 3000, 'the writer to recover');
    expect(events).toEqual(['GW_ERR_SPOOL_TIMEOUT', 'healthy']);
    await writer.append(rec(4));
    expect(ids(await readAll(dir, writer))).toEqual(['e1', 'e2', 'e4']);
    expect(writer.recordsDiscarded).toBe(0);
    await writer.close();
  });
});

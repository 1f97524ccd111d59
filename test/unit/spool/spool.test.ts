import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { decodeRecord, encodeRecord } from '../../../src/spool/framing';
import { SpoolFullError, SpoolWriter, listSegments, readBatch, readCheckpoint, recoverSpool, segmentPath, writeCheckpoint } from '../../../src/spool';
import { eventually, tempDir } from '../../helpers/test-kit';

const rec = (i: number) => Buffer.from(JSON.stringify({ event_id: `e${i}`, pad: 'x'.repeat(i % 50) }));
const ids = (payloads: Buffer[]) => payloads.map((p) => JSON.parse(p.toString()).event_id);

async function openSpool(dir: string, options: { segmentBytes?: number; maxBytes?: number } = {}) {
  const report = recoverSpool(dir);
  const writer = await SpoolWriter.open(
    { dir, segmentBytes: options.segmentBytes ?? 1 << 20, maxBytes: options.maxBytes ?? 1 << 30 },
    report.tail.segment,
    report.tail.size,
    report.totalBytes,
  );
  return { report, writer };
}

/** Where the records of a segment file end (it is preallocated: its size says nothing). */
function dataEnd(path: string): number {
  const data = readFileSync(path);
  let offset = 0;
  for (let r = decodeRecord(data, 0); r.kind === 'record'; r = decodeRecord(data, offset)) offset = r.next;
  return offset;
}

async function readAll(dir: string, writer: SpoolWriter) {
  const out: Buffer[] = [];
  let position = readCheckpoint(dir, listSegments(dir));
  let skipped = 0;
  for (;;) {
    const batch = await readBatch(dir, position, writer.durableEnd, 100);
    out.push(...batch.payloads);
    skipped += batch.skippedBadBytes;
    if (batch.payloads.length === 0 && batch.next.segment === position.segment && batch.next.offset === position.offset) break;
    position = batch.next;
  }
  return { payloads: out, skipped, end: position };
}

describe('framing', () => {
  test('round trip, and a flipped byte or a short read is detected', () => {
    const frame = encodeRecord(rec(7));
    const ok = decodeRecord(frame, 0);
    expect(ok.kind).toBe('record');
    const flipped = Buffer.from(frame);
    flipped[flipped.length - 3] ^= 0x01;
    expect(decodeRecord(flipped, 0).kind).toBe('corrupt');
    expect(decodeRecord(frame.subarray(0, frame.length - 1), 0).kind).toBe('incomplete');
    expect(decodeRecord(Buffer.from([0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]), 0).kind).toBe('corrupt');
  });
});

describe('SpoolWriter', () => {
  test('concurrent appends are made durable in groups, one fdatasync for many records', async () => {
    const dir = tempDir('spool-');
    const { writer } = await openSpool(dir);
    await Promise.all(Array.from({ length: 1000 }, (_, i) => writer.append(rec(i))));
    expect(writer.fsyncs).toBeLessThan(100);
    expect(writer.fsyncs).toBeGreaterThan(0);
    const { payloads } = await readAll(dir, writer);
    expect(ids(payloads)).toEqual(Array.from({ length: 1000 }, (_, i) => `e${i}`));
    await writer.close();
  });

  test('appendWritten: records handed over in one turn reach the file together, before any callback runs', async () => {
    const dir = tempDir('spool-');
    const { writer } = await openSpool(dir);
    const frames = Array.from({ length: 50 }, (_, i) => encodeRecord(rec(i)).length).reduce((a, b) => a + b, 0);
    const sizesSeen: number[] = [];
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 50; i++) {
        writer.appendWritten(JSON.stringify({ event_id: `e${i}`, pad: 'x'.repeat(i % 50) }), (err) => {
          expect(err).toBeUndefined();
          sizesSeen.push(dataEnd(segmentPath(dir, 1)));
          if (sizesSeen.length === 50) resolve();
        });
      }
      expect(dataEnd(segmentPath(dir, 1))).toBe(0); // nothing written yet: one write at the end of the turn
    });
    expect(new Set(sizesSeen)).toEqual(new Set([frames]));
    await eventually(() => writer.durableEnd.offset === frames, 2000, 'the group commit');
    const { payloads } = await readAll(dir, writer);
    expect(ids(payloads)).toEqual(Array.from({ length: 50 }, (_, i) => `e${i}`));
    await writer.close();
  });

  test('the size cap is strict: SpoolFullError, and room again once segments are released', async () => {
    const dir = tempDir('spool-');
    const frame = encodeRecord(rec(1)).length;
    const { writer } = await openSpool(dir, { maxBytes: frame * 3 });
    for (let i = 0; i < 3; i++) await writer.append(rec(1));
    await expect(writer.append(rec(1))).rejects.toBeInstanceOf(SpoolFullError);
    expect(statSync(segmentPath(dir, 1)).size).toBe(frame * 3);
    writer.released(frame);
    await expect(writer.append(rec(1))).resolves.toBeUndefined();
    await writer.close();
  });

  test('segments rotate past their size, and a reader walks them in order', async () => {
    const dir = tempDir('spool-');
    const { writer } = await openSpool(dir, { segmentBytes: 2000 });
    for (let i = 0; i < 200; i++) await writer.append(rec(i));
    expect(listSegments(dir).length).toBeGreaterThan(5);
    const { payloads } = await readAll(dir, writer);
    expect(ids(payloads)).toEqual(Array.from({ length: 200 }, (_, i) => `e${i}`));
    await writer.close();
  });
});

describe('recovery', () => {
  test('a torn tail of a segment appended by the previous release is cut off and counted; appends continue cleanly after it', async () => {
    const dir = tempDir('spool-');
    for (let i = 0; i < 10; i++) appendFileSync(segmentPath(dir, 1), encodeRecord(rec(i))); // the old layout: no zero tail
    const good = statSync(segmentPath(dir, 1)).size;
    appendFileSync(segmentPath(dir, 1), encodeRecord(rec(99)).subarray(0, 11)); // a write torn by a crash
    const opened = await openSpool(dir);
    expect(opened.report.badTails).toEqual([{ segment: 1, badBytes: 11 }]);
    expect(statSync(segmentPath(dir, 1)).size).toBe(good);
    const writer = opened.writer;
    await writer.append(rec(10));
    const { payloads } = await readAll(dir, writer);
    expect(ids(payloads)).toEqual(Array.from({ length: 11 }, (_, i) => `e${i}`));
    await writer.close();
  });

  test('a corrupt record in an older segment: its good records are kept, the rest skipped and reported, the next segment read', async () => {
    const dir = tempDir('spool-');
    const { writer } = await openSpool(dir, { segmentBytes: 1000 });
    for (let i = 0; i < 60; i++) await writer.append(rec(i));
    await writer.close();
    const first = segmentPath(dir, 1);
    const bytes = readFileSync(first);
    const firstRecord = decodeRecord(bytes, 0);
    if (firstRecord.kind !== 'record') throw new Error('unexpected');
    bytes[firstRecord.next + 10] ^= 0xff; // corrupt the second record's payload
    writeFileSync(first, bytes);
    const opened = await openSpool(dir, { segmentBytes: 1000 });
    expect(opened.report.badTails[0].segment).toBe(1);
    const { payloads, skipped } = await readAll(dir, opened.writer);
    // Counted up to its last byte that is not zero: the preallocated zeros after the data are not bad bytes.
    let lastNonZero = bytes.length - 1;
    while (bytes[lastNonZero] === 0) lastNonZero--;
    expect(skipped).toBe(lastNonZero + 1 - firstRecord.next);
    expect(opened.report.badTails[0].badBytes).toBe(skipped);
    const got = ids(payloads);
    expect(got[0]).toBe('e0');
    expect(got[got.length - 1]).toBe('e59');
    await opened.writer.close();
  });

  test('an empty folder starts a new spool at segment 1', () => {
    expect(recoverSpool(tempDir('spool-'))).toEqual({ segments: [], tail: { segment: 1, size: 0 }, totalBytes: 0, badTails: [] });
  });
});

describe('reader and checkpoint', () => {
  test('never reads past the durable end', async () => {
    const dir = tempDir('spool-');
    const { writer } = await openSpool(dir);
    await writer.append(rec(1));
    const durable = writer.durableEnd;
    appendFileSync(segmentPath(dir, 1), encodeRecord(rec(2))); // bytes beyond what the writer made durable
    const batch = await readBatch(dir, { segment: 1, offset: 0 }, durable, 100);
    expect(ids(batch.payloads)).toEqual(['e1']);
    expect(batch.next).toEqual(durable);
    await writer.close();
  });

  test('the checkpoint survives a round trip and moves past a deleted segment', () => {
    const dir = tempDir('spool-');
    writeCheckpoint(dir, { segment: 3, offset: 120 });
    expect(readCheckpoint(dir, [3, 4])).toEqual({ segment: 3, offset: 120 });
    expect(readCheckpoint(dir, [4, 5])).toEqual({ segment: 4, offset: 0 });
    expect(readCheckpoint(dir, [1, 2, 5])).toEqual({ segment: 5, offset: 0 });
    expect(readCheckpoint(tempDir('spool-'), [2, 3])).toEqual({ segment: 2, offset: 0 });
    truncateSync(`${dir}/checkpoint.json`, 3); // a broken file counts as none
    expect(readCheckpoint(dir, [4])).toEqual({ segment: 4, offset: 0 });
  });
});

describe('a disk that stops answering', () => {
  test('turns into typed timeouts, never a hung append, and recovers when the disk answers again', async () => {
    const dir = tempDir('spool-hang-');
    const writer = await SpoolWriter.open({ dir, segmentBytes: 1 << 20, maxBytes: 1 << 30, deadlineMs: 100 }, 1, 0, 0);
    // Every libuv pool thread blocks in open() on a FIFO nobody writes to: the fdatasync
    // queues behind them exactly as behind a hung disk. No mock: real I/O that does not return.
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const fifos = Array.from({ length: poolSize }, (_, i) => join(dir, `fifo${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const readers = fifos.map((f) => fsp.open(f, 'r'));
    const started = Date.now();
    await expect(writer.append(rec(1))).rejects.toMatchObject({ code: 'GW_ERR_SPOOL_TIMEOUT', pending: true });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(writer.writable).toBe(false);
    // While stalled, appends fail at once instead of queueing behind the stuck disk.
    await expect(writer.append(rec(2))).rejects.toMatchObject({ code: 'GW_ERR_SPOOL_TIMEOUT', pending: false });
    // The disk answers again.
    const writers = fifos.map((f) => openSync(f, 'w'));
    for (const handle of await Promise.all(readers)) await handle.close();
    for (const fd of writers) closeSync(fd);
    await eventually(() => writer.writable, 3000, 'the writer to recover');
    await expect(writer.append(rec(3))).resolves.toBeUndefined();
    const { payloads } = await readAll(dir, writer);
    expect(ids(payloads)).toEqual(['e1', 'e3']); // the timed-out record landed after all; the refused one never did
    await writer.close();
  });
});

import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  promises as fsp,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { decodeRecord, encodeRecord, frameInto, maxFrameBytes } from '../../../src/spool/framing';
import {
  SpoolFullError,
  SpoolQueue,
  SpoolWriter,
  listSegments,
  readBatch,
  readCheckpoint,
  recoverSpool,
  segmentPath,
  type SpoolLink,
} from '../../../src/spool';
import { diskFaultsUnavailable, fillDisk, mountTmpfs, unmountTmpfs } from '../../helpers/disk-faults';
import { eventually, tempDir } from '../../helpers/test-kit';

/**
 * Preallocated segments written in place (issue 13, "A faster spool"): full size from
 * creation, no size change from appends, the end of the data found by framing, torn and
 * corrupt frames told apart from the zeros after the data, and segments written by the
 * previous release (appended, no zero tail) still recovered and shipped.
 */
const SEGMENT = 64 * 1024;
const rec = (i: number, pad = 20) => Buffer.from(JSON.stringify({ event_id: `e${i}`, pad: 'x'.repeat(pad) }));
const ids = (payloads: Buffer[]) => payloads.map((p) => JSON.parse(p.toString()).event_id as string);

async function openSpool(dir: string, options: { segmentBytes?: number; maxBytes?: number } = {}) {
  const report = recoverSpool(dir);
  const writer = await SpoolWriter.open(
    { dir, segmentBytes: options.segmentBytes ?? SEGMENT, maxBytes: options.maxBytes ?? 1 << 30 },
    report.tail.segment,
    report.tail.size,
    report.totalBytes,
  );
  return { report, writer };
}

async function readAll(dir: string, durable: () => { segment: number; offset: number }) {
  const out: Buffer[] = [];
  let position = readCheckpoint(dir, listSegments(dir));
  let skipped = 0;
  for (let i = 0; i < 1000; i++) {
    const batch = await readBatch(dir, position, durable(), 100);
    out.push(...batch.payloads);
    skipped += batch.skippedBadBytes;
    if (batch.payloads.length === 0 && batch.next.segment === position.segment && batch.next.offset === position.offset) break;
    position = batch.next;
  }
  return { payloads: out, skipped };
}

/** Offsets of the frames of a segment file, and where its data ends. */
function frames(path: string | Buffer): { starts: number[]; end: number } {
  const data = typeof path === 'string' ? readFileSync(path) : path;
  const starts: number[] = [];
  let offset = 0;
  for (let r = decodeRecord(data, 0); r.kind === 'record'; r = decodeRecord(data, offset)) {
    starts.push(offset);
    offset = r.next;
  }
  return { starts, end: offset };
}

function allZero(data: Buffer, from: number): boolean {
  for (let i = from; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** Overwrites bytes of a file in place (a crash's torn write, a flipped bit). */
function patch(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * A spool of 5 records in one preallocated segment, as a crash would leave it while the
 * last one was being written: the spare (segment 2) removed, so segment 1 is where appends
 * continue. Returns the folder, the last frame's place and the original bytes.
 */
async function fiveRecords(): Promise<{ dir: string; last: { start: number; end: number }; original: Buffer }> {
  const dir = tempDir('prealloc-');
  const { writer } = await openSpool(dir);
  for (let i = 0; i < 5; i++) await writer.append(rec(i));
  await writer.close();
  rmSync(segmentPath(dir, 2), { force: true });
  const { starts, end } = frames(segmentPath(dir, 1));
  expect(starts).toHaveLength(5);
  expect(statSync(segmentPath(dir, 1)).size).toBe(SEGMENT); // preallocated: the data ends by framing, not at the file's end
  return { dir, last: { start: starts[4], end }, original: readFileSync(segmentPath(dir, 1)) };
}

/** Recovers a copy of `original`, damaged, as segment 1 of a new folder. */
async function recoverCopy(original: Buffer, damage: (path: string) => void) {
  const dir = tempDir('prealloc-copy-');
  writeFileSync(segmentPath(dir, 1), original);
  damage(segmentPath(dir, 1));
  const seen: string[] = [];
  const report = recoverSpool(dir, (_s, payload) => seen.push(JSON.parse(payload.toString()).event_id));
  const after = readFileSync(segmentPath(dir, 1));
  return { dir, report, seen, after };
}

describe('preallocated segments', () => {
  test('a segment has its full size, in real blocks, from creation; appends and their fdatasyncs change neither size nor blocks', async () => {
    const dir = tempDir('prealloc-');
    const { writer } = await openSpool(dir);
    const first = statSync(segmentPath(dir, 1));
    expect(first.size).toBe(SEGMENT);
    expect(first.blocks * 512).toBeGreaterThanOrEqual(SEGMENT); // not sparse: ftruncate alone would leave 0 blocks
    // The next segment is ready before it is needed, also full size and allocated.
    expect(existsSync(segmentPath(dir, 2))).toBe(true);
    expect(statSync(segmentPath(dir, 2)).size).toBe(SEGMENT);
    expect(statSync(segmentPath(dir, 2)).blocks * 512).toBeGreaterThanOrEqual(SEGMENT);
    expect(writer.bytesOnDisk).toBe(2 * SEGMENT);
    for (let i = 0; i < 50; i++) await writer.append(rec(i));
    const after = statSync(segmentPath(dir, 1));
    expect(after.size).toBe(first.size);
    expect(after.blocks).toBe(first.blocks);
    expect(writer.bytesOnDisk).toBe(2 * SEGMENT); // in place: nothing more on disk
    expect(frames(segmentPath(dir, 1)).starts).toHaveLength(50);
    await writer.close();
  });

  test('a record that does not fit the rest of a segment goes to the next one, which was prepared ahead', async () => {
    const dir = tempDir('prealloc-');
    const { writer } = await openSpool(dir);
    const big = (i: number) => rec(i, 10_000);
    for (let i = 0; i < 20; i++) {
      // The spare is prepared on the pool; on a loaded machine it may be late (then rotation appends: the next test). Here it is awaited.
      await eventually(() => existsSync(segmentPath(dir, writer.currentSegment + 1)), 5000, 'the spare');
      await writer.append(big(i));
    }
    for (const s of listSegments(dir)) expect(statSync(segmentPath(dir, s)).size).toBe(SEGMENT);
    const first = frames(segmentPath(dir, 1));
    expect(first.end).toBeLessThanOrEqual(SEGMENT);
    expect(SEGMENT - first.end).toBeLessThan(encodeRecord(big(0)).length); // filled as far as a record fits
    const { payloads } = await readAll(dir, () => writer.durableEnd);
    expect(ids(payloads)).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`));
    await writer.close();
  });

  test('when the next segment is not ready in time, rotation appends to a new one, and moves to the spare once it is ready', async () => {
    const dir = tempDir('prealloc-late-');
    const { writer } = await openSpool(dir);
    // Every libuv pool thread blocks in open() on a FIFO: the spare's zeros cannot be written meanwhile.
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const fifos = Array.from({ length: poolSize }, (_, i) => join(dir, `fifo${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const readers = fifos.map((f) => fsp.open(f, 'r'));
    const written = (i: number) => new Promise<Error | undefined>((resolve) => writer.appendWritten(rec(i, 1000).toString(), resolve));
    // Through segment 1 into segment 2 (the spare made at open), then into 3: its spare cannot be prepared now.
    let i = 0;
    while (writer.currentSegment < 3 && i < 1000) expect(await written(i++)).toBeUndefined();
    expect(writer.currentSegment).toBe(3);
    expect(statSync(segmentPath(dir, 3)).size).toBeLessThan(SEGMENT); // appended, as before preallocation
    const before = i;
    for (let n = 0; n < 5; n++) expect(await written(i++)).toBeUndefined();
    expect(statSync(segmentPath(dir, 3)).size).toBe(frames(segmentPath(dir, 3)).end);
    // The pool again: the spare is prepared (as segment 4) and the next record moves to it.
    const writers = fifos.map((f) => openSync(f, 'w'));
    for (const handle of await Promise.all(readers)) await handle.close();
    for (const fd of writers) closeSync(fd);
    await eventually(() => existsSync(segmentPath(dir, 4)), 5000, 'the spare');
    expect(await written(i++)).toBeUndefined();
    expect(writer.currentSegment).toBe(4);
    expect(statSync(segmentPath(dir, 4)).size).toBe(SEGMENT);
    await writer.append(rec(i++));
    const { payloads } = await readAll(dir, () => writer.durableEnd);
    expect(ids(payloads)).toEqual(Array.from({ length: i }, (_, n) => `e${n}`));
    expect(before).toBeGreaterThan(0);
    expect(recoverSpool(dir).badTails).toEqual([]);
    await writer.close();
  });
});

describe('records appended from a written callback', () => {
  test('at segment boundaries, a record appended while the one before is being written is neither lost nor overwritten', async () => {
    const dir = tempDir('prealloc-nested-');
    const { writer } = await openSpool(dir, { segmentBytes: 8192 });
    const seen: string[] = [];
    const total = 120;
    await new Promise<void>((resolve) => {
      let next = 0;
      const append = (i: number) =>
        writer.appendWritten(rec(i, 900).toString(), (err) => {
          expect(err).toBeUndefined();
          seen.push(`e${i}`);
          // The reply ends here, and another completes at once: its record is appended from inside the flush.
          if (next < total) append(next++);
          if (seen.length === total) resolve();
        });
      for (let k = 0; k < 4; k++) append(next++);
    });
    await eventually(() => writer.durableEnd.segment === writer.currentSegment, 3000, 'the last group');
    await writer.append(rec(total));
    const { payloads, skipped } = await readAll(dir, () => writer.durableEnd);
    expect(skipped).toBe(0);
    expect(ids(payloads).sort()).toEqual([...seen, `e${total}`].sort());
    expect(recoverSpool(dir).badTails).toEqual([]);
    await writer.close();
  });
});

describe('recovery by framing in a preallocated segment', () => {
  test('the last frame cut at every offset: the zeros after the data are no bad bytes, the torn frame is, and it is zeroed', async () => {
    const { last, original } = await fiveRecords();
    for (let cut = 0; cut < last.end - last.start; cut++) {
      const { report, seen, after } = await recoverCopy(original, (path) => patch(path, last.start + cut, Buffer.alloc(last.end - last.start - cut)));
      expect(seen).toEqual(['e0', 'e1', 'e2', 'e3']);
      expect(report.tail).toEqual({ segment: 1, size: last.start });
      const torn = original.subarray(last.start, last.start + cut);
      // cut 0: a header of zeros, the clean end of the data; otherwise the torn frame's bytes (up to its last that is not zero).
      expect(report.badTails).toEqual(cut === 0 || torn.every((b) => b === 0) ? [] : [{ segment: 1, badBytes: expect.any(Number) }]);
      if (report.badTails.length > 0) expect(report.badTails[0].badBytes).toBeLessThanOrEqual(cut);
      expect(after.length).toBe(SEGMENT); // zeroed in place: still preallocated
      expect(allZero(after, last.start)).toBe(true);
    }
  });

  test('a flipped byte in the checksum, or in the payload, of the last frame: reported as bad, zeroed, the good records kept', async () => {
    const { last, original } = await fiveRecords();
    for (const at of [last.start + 5, last.end - 2]) {
      const { report, seen, after } = await recoverCopy(original, (path) => patch(path, at, Buffer.from([original[at] ^ 0x40])));
      expect(seen).toEqual(['e0', 'e1', 'e2', 'e3']);
      expect(report.badTails).toEqual([{ segment: 1, badBytes: last.end - last.start }]);
      expect(after.length).toBe(SEGMENT);
      expect(allZero(after, last.start)).toBe(true);
    }
  });

  test('zeros inside a frame are a torn frame, never the end of the data: the frames after it are not trusted', async () => {
    const { last, original } = await fiveRecords();
    const { starts } = frames(original);
    // Zeros in the middle of the last frame's payload.
    const middle = last.start + Math.floor((last.end - last.start) / 2);
    const one = await recoverCopy(original, (path) => patch(path, middle, Buffer.alloc(4)));
    expect(one.seen).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(one.report.badTails).toHaveLength(1);
    // Zeros in the middle of the third frame: it and everything after it are bad.
    const third = starts[2] + 12;
    const two = await recoverCopy(original, (path) => patch(path, third, Buffer.alloc(4)));
    expect(two.seen).toEqual(['e0', 'e1']);
    expect(two.report.badTails).toEqual([{ segment: 1, badBytes: last.end - starts[2] }]);
    expect(two.after.length).toBe(SEGMENT);
    expect(allZero(two.after, starts[2])).toBe(true);
  });

  test('a torn frame, then new appends shorter than it, then a restart: no stale bytes are ever read', async () => {
    const { dir, last, original } = await fiveRecords();
    // The last frame's header and most of its payload reached the disk, not its end.
    patch(segmentPath(dir, 1), last.end - 3, Buffer.alloc(3));
    expect(readFileSync(segmentPath(dir, 1)).equals(original)).toBe(false);
    let opened = await openSpool(dir);
    expect(opened.report.badTails).toEqual([{ segment: 1, badBytes: expect.any(Number) }]);
    // Shorter than the torn frame: without zeroing, the rest of it would sit right after them.
    await opened.writer.append(Buffer.from('{"event_id":"n1"}'));
    await opened.writer.append(Buffer.from('{"event_id":"n2"}'));
    await opened.writer.close();
    opened = await openSpool(dir);
    expect(opened.report.badTails).toEqual([]);
    const { payloads, skipped } = await readAll(dir, () => opened.writer.durableEnd);
    expect(ids(payloads)).toEqual(['e0', 'e1', 'e2', 'e3', 'n1', 'n2']);
    expect(skipped).toBe(0);
    await opened.writer.close();
  });

  test('bytes that are not zero after a header of zeros (a torn write whose first page was lost) are bad bytes, and zeroed', async () => {
    const { last, original } = await fiveRecords();
    const { report, seen, after } = await recoverCopy(original, (path) => patch(path, last.start, Buffer.alloc(8)));
    expect(seen).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(report.badTails).toEqual([{ segment: 1, badBytes: last.end - last.start - 8 }]);
    expect(allZero(after, last.start)).toBe(true);
  });
});

describe('the reader and the durable end', () => {
  test('never reads past the durable end the link gives, even when valid frames follow it in the preallocated segment', async () => {
    const dir = tempDir('prealloc-');
    const { writer } = await openSpool(dir);
    await writer.append(rec(1));
    const durable = { ...writer.durableEnd };
    await writer.close();
    expect(statSync(segmentPath(dir, 1)).size).toBe(SEGMENT); // the frame below is written in place, inside the file
    // A valid frame right after the durable end (written, not yet durable, as far as the reader was told).
    const frame = encodeRecord(rec(2));
    patch(segmentPath(dir, 1), durable.offset, frame);
    const link: SpoolLink = { durableEnd: durable, needsRoom: false, released: () => {}, suspect: () => {} };
    const queue = new SpoolQueue(dir, link);
    const from = await queue.start();
    const batch = await queue.read(from, 100, 1 << 20);
    expect(ids(batch.payloads)).toEqual(['e1']);
    expect(batch.next).toEqual(durable);
    expect(batch.reachedEnd).toBe(true);
    // Told of the new end, it reads the frame.
    const moved: SpoolLink = { ...link, durableEnd: { segment: 1, offset: durable.offset + frame.length } };
    const later = await new SpoolQueue(dir, moved).read(batch.next, 100, 1 << 20);
    expect(ids(later.payloads)).toEqual(['e2']);
  });

  test('an older preallocated segment ends at its header of zeros: the reader moves on to the next one, counting no bad bytes', async () => {
    const dir = tempDir('prealloc-');
    const { writer } = await openSpool(dir);
    for (let i = 0; i < 3; i++) await writer.append(rec(i, 30_000)); // two fit a segment: the third starts segment 2
    expect(writer.currentSegment).toBe(2);
    expect(statSync(segmentPath(dir, 1)).size).toBe(SEGMENT);
    const { payloads, skipped } = await readAll(dir, () => writer.durableEnd);
    expect(ids(payloads)).toEqual(['e0', 'e1', 'e2']);
    expect(skipped).toBe(0);
    await writer.close();
  });
});

describe('segments written by the previous release', () => {
  test('appended segments (no zero tail, a torn end) still recover and ship; new records go to preallocated segments', async () => {
    const dir = tempDir('prealloc-old-');
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 5; i++) appendFileSync(segmentPath(dir, 1), encodeRecord(rec(i)));
    for (let i = 5; i < 10; i++) appendFileSync(segmentPath(dir, 2), encodeRecord(rec(i)));
    appendFileSync(segmentPath(dir, 2), encodeRecord(rec(10)).subarray(0, 13)); // torn by a crash
    const oldSize = statSync(segmentPath(dir, 2)).size - 13;
    const { report, writer } = await openSpool(dir);
    expect(report.badTails).toEqual([{ segment: 2, badBytes: 13 }]);
    expect(report.tail).toEqual({ segment: 2, size: oldSize });
    expect(statSync(segmentPath(dir, 2)).size).toBe(oldSize); // cut, as before
    await writer.append(rec(11));
    await writer.append(rec(12));
    // Moved on to the spare, preallocated.
    expect(writer.currentSegment).toBe(3);
    expect(statSync(segmentPath(dir, 3)).size).toBe(SEGMENT);
    const { payloads, skipped } = await readAll(dir, () => writer.durableEnd);
    expect(ids(payloads)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'e11', 'e12']);
    expect(skipped).toBe(0);
    await writer.close();
    expect(recoverSpool(dir).badTails).toEqual([]);
  });

  test('an older appended segment with a corrupt record: its good records shipped, the bad tail skipped and counted', async () => {
    const dir = tempDir('prealloc-old-');
    for (let i = 0; i < 5; i++) appendFileSync(segmentPath(dir, 1), encodeRecord(rec(i)));
    const bytes = readFileSync(segmentPath(dir, 1));
    const second = (decodeRecord(bytes, 0) as { next: number }).next;
    bytes[second + 10] ^= 0xff;
    writeFileSync(segmentPath(dir, 1), bytes);
    copyFileSync(segmentPath(dir, 1), join(dir, 'copy')); // unrelated file: ignored
    const { report, writer } = await openSpool(dir);
    expect(report.badTails).toEqual([{ segment: 1, badBytes: bytes.length - second }]);
    await writer.append(rec(5));
    const { payloads } = await readAll(dir, () => writer.durableEnd);
    expect(ids(payloads)).toEqual(['e0', 'e5']);
    await writer.close();
  });
});

describe('size accounting', () => {
  test('a preallocated segment counts its full size against the cap; full, then room again once a segment is deleted', async () => {
    const dir = tempDir('prealloc-cap-');
    const { writer } = await openSpool(dir, { maxBytes: 3 * SEGMENT });
    expect(writer.bytesOnDisk).toBe(2 * SEGMENT); // the first segment and the spare
    const big = (i: number) => rec(i, 10_000);
    let i = 0;
    let full: unknown = null;
    for (; i < 100 && full === null; i++)
      full = await writer.append(big(i)).then(
        () => null,
        (err: unknown) => err,
      );
    expect(full).toBeInstanceOf(SpoolFullError);
    const onDisk = listSegments(dir).reduce((sum, s) => sum + statSync(segmentPath(dir, s)).size, 0);
    expect(onDisk).toBeLessThanOrEqual(3 * SEGMENT);
    expect(writer.bytesOnDisk).toBe(onDisk);
    expect(writer.writable).toBe(false);
    // The shipper deletes segment 1: its full size is given back, and the spool takes records again (the spare prepared anew).
    const size = statSync(segmentPath(dir, 1)).size;
    rmSync(segmentPath(dir, 1));
    writer.released(size);
    await eventually(() => writer.writable, 3000, 'room again');
    await expect(writer.append(big(i))).resolves.toBeUndefined();
    const again = listSegments(dir).reduce((sum, s) => sum + statSync(segmentPath(dir, s)).size, 0);
    expect(again).toBeLessThanOrEqual(3 * SEGMENT);
    expect(writer.bytesOnDisk).toBe(again);
    await writer.close();
  });
});

describe('latin1 for ASCII', () => {
  test('an ASCII record is framed as the same bytes as UTF-8; one with other characters is UTF-8', () => {
    for (const text of ['{"a":"plain ascii"}', '{"a":"caf\u00e9"}', '{"a":"\u0100\u4e2d\ud83d\ude00"}', '{"a":"\\u0000 \u007f"}']) {
      const target = Buffer.alloc(maxFrameBytes(text));
      const length = frameInto(target, 0, text);
      const r = decodeRecord(target.subarray(0, length), 0);
      expect(r.kind).toBe('record');
      expect((r as { payload: Buffer }).payload.equals(Buffer.from(text, 'utf8'))).toBe(true);
    }
  });
});

const noDiskFaults = diskFaultsUnavailable();
if (noDiskFaults !== null) process.stdout.write(`preallocated full-disk tests skipped: ${noDiskFaults}\n`);
const diskSuite = noDiskFaults === null ? describe : describe.skip;

diskSuite('a full disk under preallocated segments (a small tmpfs)', () => {
  const mounts: string[] = [];
  afterAll(() => mounts.forEach(unmountTmpfs));

  test('noticed while writing in place: failing with ENOSPC within a few records, final records held, all written once there is room', async () => {
    const dir = join(tempDir('prealloc-full-'), 'spool');
    mountTmpfs(dir, 1024 * 1024);
    mounts.push(dir);
    const events: string[] = [];
    const report = recoverSpool(dir);
    const writer = await SpoolWriter.open(
      { dir, segmentBytes: SEGMENT, maxBytes: 1 << 30, onHealth: (h) => events.push(h.state === 'healthy' ? 'healthy' : h.code) },
      report.tail.segment,
      report.tail.size,
      report.totalBytes,
    );
    await writer.append(rec(0));
    const filler = fillDisk(dir);
    // Every write below lands in place in the preallocated segment: only the free-space check can tell the disk is full.
    const results: Array<Error | undefined> = [];
    let i = 1;
    for (; i < 200 && writer.writable; i++) {
      results.push(await new Promise<Error | undefined>((resolve) => writer.appendWritten(rec(i).toString(), resolve)));
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(writer.health).toMatchObject({ state: 'failing', code: 'ENOSPC' });
    expect(i).toBeLessThan(30);
    expect(results.every((r) => r === undefined)).toBe(true);
    // While failing: final records held, in order.
    for (let n = 0; n < 5; n++, i++) expect(await new Promise((resolve) => writer.appendWritten(rec(i).toString(), resolve))).toBeUndefined();
    expect(writer.heldRecords).toBe(5);
    expect(events).toEqual(['ENOSPC']);
    rmSync(filler);
    await eventually(() => writer.writable, 5000, 'the writer to recover');
    expect(events).toEqual(['ENOSPC', 'healthy']);
    await writer.append(rec(i++));
    const { payloads } = await readAll(dir, () => writer.durableEnd);
    expect(ids(payloads)).toEqual(Array.from({ length: i }, (_, n) => `e${n}`));
    expect(writer.recordsDiscarded).toBe(0);
    await writer.close();
  });

  test('ENOSPC while preparing the next segment is a spool fault: failing, nothing lost, back by itself', async () => {
    const dir = join(tempDir('prealloc-full-'), 'spool');
    mountTmpfs(dir, 2 * 1024 * 1024);
    mounts.push(dir);
    const events: string[] = [];
    const report = recoverSpool(dir);
    // Segments of 768 KiB on 2 MiB: the first and its spare leave 512 KiB (enough for the free-space check), so the third cannot be prepared.
    const writer = await SpoolWriter.open(
      { dir, segmentBytes: 768 * 1024, maxBytes: 1 << 30, onHealth: (h) => events.push(h.state === 'healthy' ? 'healthy' : h.code) },
      report.tail.segment,
      report.tail.size,
      report.totalBytes,
    );
    let i = 0;
    for (; i < 2000 && writer.writable; i++) expect(await new Promise((resolve) => writer.appendWritten(rec(i, 2000).toString(), resolve))).toBeUndefined();
    expect(writer.health).toMatchObject({ state: 'failing', code: 'ENOSPC' });
    expect(events).toEqual(['ENOSPC']);
    expect(writer.currentSegment).toBe(2); // failed when rotating into segment 2 started the preparation of segment 3
    // Room again: segment 1 shipped and deleted.
    await eventually(() => writer.durableEnd.segment === 2, 3000, 'records in segment 2 durable');
    const size = statSync(segmentPath(dir, 1)).size;
    const before = (await readAll(dir, () => writer.durableEnd)).payloads.length;
    rmSync(segmentPath(dir, 1));
    writer.released(size);
    await eventually(() => writer.writable, 5000, 'the writer to recover');
    await writer.append(rec(i++));
    const { payloads } = await readAll(dir, () => writer.durableEnd);
    expect(before).toBeGreaterThan(0);
    const got = ids(payloads);
    // Segment 1's records were shipped (and deleted); everything after them is there, in order, once.
    expect(got).toEqual(Array.from({ length: i }, (_, n) => `e${n}`).slice(i - got.length));
    expect(writer.recordsDiscarded).toBe(0);
    await writer.close();
  });
});

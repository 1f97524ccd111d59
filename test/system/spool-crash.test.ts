import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SpoolWriter, encodeRecord, listSegments, readBatch, recoverSpool, scanSegment, segmentPath } from '../../src/spool';
import { REPO, tempDir } from '../helpers/test-kit';

/**
 * The spool's promise: a record whose append() resolved is on disk. A child appends
 * under load and prints the ids acknowledged; it is SIGKILLed at random moments five
 * times, restarting on the same folder; every acknowledged id must then be read back,
 * exactly once, with no corrupt record in between. After each kill the test checks what
 * was left before recovery runs, and leaves a torn tail for the next start to cut.
 */
const CHILD = join(REPO, 'dist', 'test', 'fixtures', 'spool-child.js');

function runAndKill(dir: string, prefix: string, afterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], {
      env: { PATH: process.env.PATH, SPOOL_DIR: dir, ID_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.startsWith('ready\n') && !(child as unknown as { timer?: NodeJS.Timeout }).timer) {
        (child as unknown as { timer?: NodeJS.Timeout }).timer = setTimeout(() => child.kill('SIGKILL'), afterMs);
      }
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited on its own: ${out.slice(-200)}`));
      // Only whole lines count: a line cut by the kill was never fully acknowledged.
      resolve(
        out
          .split('\n')
          .filter((l) => l.startsWith('ack '))
          .map((l) => l.slice(4)),
      );
    });
  });
}

/**
 * What a crash can leave at the append point, written by the test after each kill so that
 * recovery has a torn tail to cut every round (a SIGKILL alone rarely lands inside a write):
 * a record cut short, a header cut short, and a whole record whose checksum does not match.
 * Each carries an event id no writer ever acknowledged. Written where the data ends (in
 * place in a preallocated segment, past the end of an appended one), as a torn write would be.
 */
function tornTail(round: number): Buffer {
  const record = encodeRecord(Buffer.from(JSON.stringify({ event_id: `torn-${round}`, pad: 'x'.repeat(40) })));
  switch (round % 3) {
    case 0:
      return record.subarray(0, record.length - 7);
    case 1:
      return record.subarray(0, 5);
    default:
      record[record.length - 2] ^= 0x55; // payload changed after its CRC was taken
      return record;
  }
}

const idOf = (payload: Buffer) => JSON.parse(payload.toString()).event_id as string;

test('no acknowledged record is lost across five SIGKILLs at random moments, and recovery cuts every torn tail', async () => {
  const dir = tempDir('spool-crash-');
  const acked: string[] = [];
  let naturalTails = 0;
  let lastTail: Buffer = Buffer.alloc(0);
  for (let round = 0; round < 5; round++) {
    // The child recovers the spool at start (as the gateway does), cutting the tail left last round.
    const ackedNow = await runAndKill(dir, `r${round}`, 150 + Math.floor(Math.random() * 400));
    acked.push(...ackedNow);

    // What the kill left, before any recovery. Appends are sequential and go to the last
    // segment only, so at most one torn tail, and only there: every older segment, including
    // the one whose tail the child's recovery should have cut, scans clean to its end.
    const segments = listSegments(dir);
    const scans = segments.map((segment) => scanSegment(dir, segment));
    expect(
      scans
        .slice(0, -1)
        .filter((scan) => scan.badBytes > 0)
        .map((scan) => scan.segment),
    ).toEqual([]);
    if (scans[scans.length - 1].badBytes > 0) naturalTails++;
    // Every record acknowledged this round lies before any torn bytes: recovery can cut the tail and lose nothing acknowledged.
    const good = new Set(scans.flatMap((scan) => scan.records.map((r) => idOf(r.payload))));
    expect(ackedNow.filter((id) => !good.has(id))).toEqual([]);
    expect(ackedNow.length).toBeGreaterThan(0);

    lastTail = tornTail(round);
    const last = segments[segments.length - 1];
    const fd = openSync(segmentPath(dir, last), 'r+');
    writeSync(fd, lastTail, 0, lastTail.length, scans[scans.length - 1].goodBytes);
    closeSync(fd);
  }
  expect(acked.length).toBeGreaterThan(500);

  // The last torn tail is cut by recovery here, as the gateway's start-up would: reported, and gone from the file.
  const lastSegment = listSegments(dir).at(-1)!;
  const tornBytes = scanSegment(dir, lastSegment).badBytes;
  expect(tornBytes).toBeGreaterThanOrEqual(lastTail.length);
  const report = recoverSpool(dir);
  expect(report.badTails).toEqual([{ segment: lastSegment, badBytes: tornBytes }]);
  // Gone: cut off, or zeroed in a preallocated segment; the data ends where appends continue.
  expect(scanSegment(dir, lastSegment).goodBytes).toBe(report.tail.size);
  expect(scanSegment(dir, lastSegment).badBytes).toBe(0);
  expect(recoverSpool(dir).badTails).toEqual([]); // and a second recovery finds nothing left to cut

  const writer = await SpoolWriter.open({ dir, segmentBytes: 64 * 1024, maxBytes: 1 << 30 }, report.tail.segment, report.tail.size, report.totalBytes);
  const seen: string[] = [];
  let position = { segment: listSegments(dir)[0], offset: 0 };
  let skipped = 0;
  for (;;) {
    const batch = await readBatch(dir, position, writer.durableEnd, 1000);
    seen.push(...batch.payloads.map(idOf));
    skipped += batch.skippedBadBytes;
    if (batch.payloads.length === 0) break;
    position = batch.next;
  }
  await writer.close();
  expect(skipped).toBe(0);
  expect(seen.filter((id) => id.startsWith('torn-'))).toEqual([]); // no torn or corrupt record was ever read as one
  const counts = new Map<string, number>();
  for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
  const missing = acked.filter((id) => !counts.has(id));
  expect(missing).toEqual([]);
  expect([...counts.values()].every((c) => c === 1)).toBe(true);
  process.stdout.write(
    `spool crash test: ${acked.length} acknowledged, ${seen.length} on disk, 5 torn tails written and cut, ${naturalTails} left by a kill mid-write\n`,
  );
}, 60000);

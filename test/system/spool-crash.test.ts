import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { SpoolWriter, listSegments, readBatch, recoverSpool } from '../../src/spool';
import { REPO, tempDir } from '../helpers/test-kit';

/**
 * The spool's promise: a record whose append() resolved is on disk. A child appends
 * under load and prints the ids acknowledged; it is SIGKILLed at random moments five
 * times, restarting on the same folder; every acknowledged id must then be read back,
 * exactly once, with no corrupt record in between.
 */
const CHILD = join(REPO, 'dist', 'test', 'fixtures', 'spool-child.js');

function runAndKill(dir: string, prefix: string, afterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], { env: { PATH: process.env.PATH, SPOOL_DIR: dir, ID_PREFIX: prefix }, stdio: ['ignore', 'pipe', 'inherit'] });
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
      resolve(out.split('\n').filter((l) => l.startsWith('ack ')).map((l) => l.slice(4)));
    });
  });
}

test('no acknowledged record is lost across five SIGKILLs at random moments', async () => {
  const dir = tempDir('spool-crash-');
  const acked: string[] = [];
  let badTails = 0;
  for (let round = 0; round < 5; round++) {
    acked.push(...(await runAndKill(dir, `r${round}`, 150 + Math.floor(Math.random() * 400))));
    badTails += recoverSpool(dir).badTails.length;
  }
  expect(acked.length).toBeGreaterThan(500);

  const report = recoverSpool(dir);
  expect(report.badTails).toEqual([]); // recovery cut every torn tail
  const writer = await SpoolWriter.open({ dir, segmentBytes: 64 * 1024, maxBytes: 1 << 30 }, report.tail.segment, report.tail.size, report.totalBytes);
  const seen: string[] = [];
  let position = { segment: listSegments(dir)[0], offset: 0 };
  let skipped = 0;
  for (;;) {
    const batch = await readBatch(dir, position, writer.durableEnd, 1000);
    seen.push(...batch.payloads.map((p) => JSON.parse(p.toString()).event_id as string));
    skipped += batch.skippedBadBytes;
    if (batch.payloads.length === 0) break;
    position = batch.next;
  }
  await writer.close();
  expect(skipped).toBe(0);
  const counts = new Map<string, number>();
  for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
  const missing = acked.filter((id) => !counts.has(id));
  expect(missing).toEqual([]);
  expect([...counts.values()].every((c) => c === 1)).toBe(true);
  process.stdout.write(`spool crash test: ${acked.length} acknowledged, ${seen.length} on disk, ${badTails} torn tails cut\n`);
}, 60000);

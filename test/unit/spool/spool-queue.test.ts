import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SpoolQueue, SpoolWriter, listSegments, readCheckpoint, recoverSpool, segmentPath } from '../../../src/spool';
import { tempDir } from '../../helpers/test-kit';

/** An audit-shaped record (identity at its fixed offsets) of about 1.5 KiB: two or three to a 4 KiB segment. */
const record = (id: string, version: 1 | 2) => `{"event_id":"${id}","version":${version},"pad":"${'x'.repeat(1500)}"}`;

async function openSpool(dir: string) {
  const report = recoverSpool(dir);
  const writer = await SpoolWriter.open({ dir, segmentBytes: 4096, maxBytes: 1 << 30 }, report.tail.segment, report.tail.size, report.totalBytes);
  return { writer, queue: new SpoolQueue(dir, writer) };
}

/** The segments on disk holding `id`'s records. */
function holding(dir: string, id: string): number[] {
  return listSegments(dir).filter((s) => readFileSync(segmentPath(dir, s)).includes(id));
}

const bytesOnDisk = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .reduce((n, f) => n + statSync(join(dir, f)).size, 0);

describe('SpoolQueue.acknowledge', () => {
  test('a batch spanning segments files each begin record under its own segment: the one holding an open transaction is kept', async () => {
    const dir = tempDir('queue-');
    const { writer, queue } = await openSpool(dir);
    const quick = async () => {
      const id = randomUUID();
      await writer.append(record(id, 1));
      await writer.append(record(id, 2));
    };
    await quick();
    await quick();
    const open = randomUUID();
    await writer.append(record(open, 1));
    for (let i = 0; i < 4; i++) await quick();
    const beginAt = holding(dir, open);
    expect(beginAt).toHaveLength(1);
    expect(beginAt[0]).toBeGreaterThan(1); // not in the batch's first segment: the case that was lost

    let position = await queue.start();
    expect(position).toEqual({ segment: 1, offset: 0 });
    const batch = await queue.read(position, 10_000, 1 << 20);
    expect(batch.next.segment).toBeGreaterThan(beginAt[0]);
    const result = await queue.acknowledge(batch);
    expect(result).toEqual({ checkpoint: null, deletion: null });
    position = batch.next;
    // Shipped segments are gone, except the one with the open transaction's begin record.
    expect(listSegments(dir).filter((s) => s < position.segment)).toEqual(beginAt);
    expect(readCheckpoint(dir, listSegments(dir))).toEqual(position);
    // The writer's byte count followed the deletions (the size cap is kept by it).
    expect(writer.bytesOnDisk).toBe(bytesOnDisk(dir));

    // The transaction ends: once its final record is acknowledged, its segment goes too.
    await writer.append(record(open, 2));
    const last = await queue.read(position, 10_000, 1 << 20);
    await queue.acknowledge(last);
    expect(existsSync(segmentPath(dir, beginAt[0]))).toBe(false);
    expect(writer.bytesOnDisk).toBe(bytesOnDisk(dir));
    await writer.close();
  });

  test('an acknowledge with nothing new does no file-system work', async () => {
    const dir = tempDir('queue-');
    const { writer, queue } = await openSpool(dir);
    await writer.append(record(randomUUID(), 1));
    const position = await queue.start();
    const batch = await queue.read(position, 10_000, 1 << 20);
    expect(await queue.acknowledge(batch)).toEqual({ checkpoint: null, deletion: null });
    expect(await queue.acknowledge(batch.next)).toEqual({});
    await writer.close();
  });
});

describe('SpoolQueue.read merges end facts (issue 13)', () => {
  const begin = (id: string) => `{"event_id":"${id}","version":1,"trace_id":"t-${id}","completed_at":"2026-01-01T00:00:00.000Z","status":0}`;
  const endFacts = (id: string) => `{"event_id":"${id}","version":3,"completed_at":"2026-01-01T00:00:01.000Z","duration_ms":1000,"status":200}`;

  test('a final read again (after a failed insert) is merged again; once acknowledged its begin is let go', async () => {
    const dir = tempDir('queue-merge-');
    const { writer, queue } = await openSpool(dir);
    const id = randomUUID();
    await writer.append(begin(id));
    let position = await queue.start();
    const first = await queue.read(position, 100, 1 << 20);
    expect(first.payloads).toHaveLength(1);
    await queue.acknowledge(first);
    position = first.next;
    await writer.append(endFacts(id));
    for (let attempt = 0; attempt < 2; attempt++) {
      const batch = await queue.read(position, 100, 1 << 20);
      expect(batch.unmatchedFinals).toBe(0);
      expect(JSON.parse(batch.payloads[0].toString())).toEqual({
        event_id: id,
        version: 2,
        trace_id: `t-${id}`,
        completed_at: '2026-01-01T00:00:01.000Z',
        status: 200,
        duration_ms: 1000,
      });
    }
    await queue.acknowledge(await queue.read(position, 100, 1 << 20));
    // Read once more from the same place (a replay): the begin is gone now, so the final stands alone, counted.
    const replay = await queue.read(position, 100, 1 << 20);
    expect(replay.unmatchedFinals).toBe(1);
    expect(JSON.parse(replay.payloads[0].toString())).toMatchObject({ event_id: id, version: 2, status: 200, received_at: '2026-01-01T00:00:00.000Z' });
    await writer.close();
  });
});

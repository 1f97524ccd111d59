import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../../src/log';
import { GENESIS_DIGEST, SEAL_FILE, Sealer, checkSeal, loadSigningKey, recordsRoot, type Seal } from '../../../src/seal';
import { tempDir } from '../../helpers/test-kit';

/**
 * The sealer's rules on a real seal file and key, with the wall clock set by the test
 * (Date.now): periods, settlement, dropped records, a clock set back, a torn last line.
 */
const PERIOD = 1000;
let now = 0;
beforeEach(() => {
  now = 1_764_000_000_500;
  jest.spyOn(Date, 'now').mockImplementation(() => now);
});
afterEach(() => jest.restoreAllMocks());

function open(dir: string): Sealer {
  const key = loadSigningKey(undefined, dir);
  return Sealer.open({ dataDir: dir, key, periodMs: PERIOD, instance: 'unit', log: createLogger('silent') });
}

function seals(dir: string): Seal[] {
  let text = '';
  try {
    text = readFileSync(join(dir, SEAL_FILE), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Seal);
}

/** Gives out a sequence number with a made-up hash, as AuditSpool.finish does. */
function record(sealer: Sealer, hash: string): { seq: number; period: number } {
  const stamp = sealer.next(1)!;
  stamp.hash = hash;
  sealer.keep(stamp);
  return { seq: stamp.seq, period: stamp.period };
}
const h = (n: number) => n.toString(16).padStart(64, '0');

test('a period is sealed once ended and settled; dropped records are listed, not hashed; an empty period is sealed too', async () => {
  const dir = tempDir('sealer-');
  const sealer = open(dir);
  sealer.resume([]);
  const a = record(sealer, h(1));
  const b = record(sealer, h(2));
  const c = record(sealer, h(3));
  expect([a.seq, b.seq, c.seq]).toEqual([1, 2, 3]);
  expect(a.period).toBe(1_764_000_000_000);
  sealer.settled(3, true);
  sealer.settled(2, false); // given up on
  now += PERIOD; // the period has ended...
  await sealer.tick();
  expect(seals(dir)).toEqual([]); // ...but seq 1 is not settled
  sealer.settled(1, true);
  await sealer.tick();
  now += PERIOD; // and an empty one
  await sealer.tick();
  const [first, empty] = seals(dir);
  expect(first).toMatchObject({
    first_seq: 1,
    last_seq: 3,
    records: 2,
    dropped: [2],
    previous_digest: GENESIS_DIGEST,
    records_root: recordsRoot([h(1), h(3)]),
  });
  expect(first.period_start).toBe('2025-11-24T16:00:00.000Z');
  expect(empty).toMatchObject({ first_seq: 4, last_seq: 3, records: 0, dropped: [], previous_digest: first.digest });
  const key = loadSigningKey(undefined, dir);
  expect(checkSeal(first, key.publicKey)).toBe('ok');
  expect(checkSeal(empty, key.publicKey)).toBe('ok');
  await sealer.stop();
});

test('a wall clock set back never moves a period back', async () => {
  const dir = tempDir('sealer-');
  const sealer = open(dir);
  sealer.resume([]);
  const a = record(sealer, h(1));
  now -= 3_600_000; // an hour back
  const b = record(sealer, h(2));
  expect(b.period).toBe(a.period);
  now += 3_600_000 + PERIOD; // forward again, past the period's end
  const c = record(sealer, h(3));
  expect(c.period).toBe(a.period + PERIOD);
  for (const seq of [1, 2, 3]) sealer.settled(seq, true);
  await sealer.stop();
  const all = seals(dir);
  expect(all.map((s) => [s.first_seq, s.last_seq])).toEqual([
    [1, 2],
    [3, 3],
  ]);
  expect(Date.parse(all[1].period_start)).toBeGreaterThanOrEqual(Date.parse(all[0].period_end));
});

test('a torn last line of the seal file is cut; the chain and the sequence continue after the last whole seal', async () => {
  const dir = tempDir('sealer-');
  const first = open(dir);
  first.resume([]);
  record(first, h(1));
  first.settled(1, true);
  await first.stop(); // seals the cut-short period
  const [only] = seals(dir);
  appendFileSync(join(dir, SEAL_FILE), '{"chain":"torn wri'); // a write cut short by a crash
  now += 5 * PERIOD;
  const second = open(dir);
  second.resume([]);
  expect(second.chain).toBe(only.chain);
  const next = record(second, h(2));
  expect(next.seq).toBe(2);
  second.settled(2, true);
  await second.stop();
  const all = seals(dir);
  expect(all).toHaveLength(2);
  expect(all[1]).toMatchObject({ chain: only.chain, first_seq: 2, last_seq: 2, previous_digest: only.digest });
  expect(readFileSync(join(dir, SEAL_FILE), 'utf8').endsWith('}\n')).toBe(true);
});

test('records recovered from the spool after the last seal are sealed in their own periods; missing seqs are dropped', async () => {
  const dir = tempDir('sealer-');
  const sealer = open(dir);
  const chain = '0b5f3c2a-3f5e-4d8e-9a61-3b1f0b6f3c11';
  const p1 = 1_763_999_990_000;
  sealer.resume([
    { chain, seq: 1, period: p1, hash: h(1), segment: 3 },
    { chain, seq: 3, period: p1, hash: h(3), segment: 3 },
    { chain, seq: 4, period: p1 + PERIOD, hash: h(4), segment: 4 },
  ]);
  expect(sealer.chain).toBe(chain); // a chain cut off before its first seal is continued
  expect(sealer.retainFrom()).toBe(3);
  expect(record(sealer, h(5)).seq).toBe(5);
  sealer.settled(5, true);
  await sealer.tick();
  const [a, b] = seals(dir);
  expect(a).toMatchObject({
    first_seq: 1,
    last_seq: 3,
    dropped: [2],
    records: 2,
    period_start: new Date(p1).toISOString(),
    period_end: new Date(p1 + PERIOD).toISOString(),
  });
  expect(b).toMatchObject({ first_seq: 4, last_seq: 4, dropped: [], previous_digest: a.digest });
  expect(sealer.retainFrom()).toBe(1); // the open period holds seq 5, written to segment 1 here
  await sealer.stop();
  expect(seals(dir).map((s) => s.last_seq)).toEqual([3, 4, 5]);
});

test('when the spool needs room, only the segment of the highest seq written is kept, until it is sealed in the file', async () => {
  const dir = tempDir('sealer-');
  const sealer = open(dir);
  sealer.resume([]);
  record(sealer, h(1));
  record(sealer, h(2));
  sealer.settled(1, true, 4);
  sealer.settled(2, true, 6);
  expect(sealer.retainFrom()).toBe(1); // normally: from the segment the period's first record went to
  expect(sealer.retainFrom(true)).toBe(6);
  now += PERIOD;
  await sealer.tick();
  expect(sealer.retainFrom(true)).toBe(Infinity);
  await sealer.stop();
});

test('a seal file whose last lines are not seals stops start-up instead of being cut', async () => {
  const dir = tempDir('sealer-');
  const first = open(dir);
  first.resume([]);
  await first.stop();
  const before = readFileSync(join(dir, SEAL_FILE), 'utf8');
  appendFileSync(join(dir, SEAL_FILE), 'not a seal\n{"torn":');
  expect(() => open(dir)).toThrow(/cannot read the audit seal file .*its last lines are not seals/);
  expect(readFileSync(join(dir, SEAL_FILE), 'utf8')).toBe(`${before}not a seal\n{"torn":`);
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { classifyRows, judgePeriods, loadVerifyKeys, recordsRoot, trustedKeys, type PeriodRows, type StoredSeal, type VerifyInput } from '../../../src/seal';
import { tempDir } from '../../helpers/test-kit';
import { ed25519, sealPeriods, type SealedTrail } from '../../helpers/seal-forge';

/** The judgement alone, over seals and per-period aggregates built in memory (the store-backed tests are test/system/audit-verify.test.ts). */
const T0 = Date.UTC(2026, 10, 21, 9);
const MIN = 60_000;
const key = ed25519();

const stored = (s: StoredSeal | Omit<StoredSeal, 'periodStartMs' | 'periodEndMs'>): StoredSeal => ({
  ...s,
  periodStartMs: Date.parse(s.period_start),
  periodEndMs: Date.parse(s.period_end),
});

/** The aggregates an untouched store would return for a trail. */
function rowsOf(trail: SealedTrail): PeriodRows[] {
  const out = new Map<number, { -readonly [K in keyof PeriodRows]: PeriodRows[K] } & { hashes: string[] }>();
  for (const r of trail.records) {
    const p = Number(r.seal_period);
    const g = out.get(p) ?? { chain: trail.chain, periodMs: p, count: 0, minSeq: Infinity, maxSeq: 0, distinctSeqs: 0, badHashes: 0, root: '', hashes: [] };
    g.count++;
    g.distinctSeqs++;
    g.minSeq = Math.min(g.minSeq, Number(r.seq));
    g.maxSeq = Math.max(g.maxSeq, Number(r.seq));
    g.hashes.push(String(r.record_hash));
    out.set(p, g);
  }
  return [...out.values()].map(({ hashes, ...g }) => ({ ...g, root: recordsRoot(hashes) }));
}

function input(trail: SealedTrail, over: Partial<VerifyInput> = {}): VerifyInput {
  return { publicKey: key.publicKey, seals: trail.seals.map(stored), before: new Map(), after: new Map(), rows: rowsOf(trail), ...over };
}

const trail = sealPeriods({ chain: 'c', startMs: T0, perPeriod: [2, 0, 3], privateKey: key.privateKey });

test('an untouched trail: no finding, every period and record counted', () => {
  expect(judgePeriods(input(trail))).toEqual({
    chains: [{ chain: 'c', instance: 'c', periodsChecked: 3, recordsChecked: 5, recordsUnsealed: 0, broken: false }],
    periodsChecked: 3,
    recordsChecked: 5,
    recordsUnsealed: 0,
    firstBreak: null,
    suspect: null,
  });
});

test('two chains (two gateways on one store): each listed with its own counts and verdict, a break in one leaving the other intact', () => {
  const other = sealPeriods({ chain: 'b', startMs: T0, perPeriod: [1, 4], privateKey: key.privateKey });
  const late: PeriodRows = { chain: 'b', periodMs: T0 + 2 * MIN, count: 2, minSeq: 6, maxSeq: 7, distinctSeqs: 2, badHashes: 0, root: 'x' };
  const both = { ...input(trail), seals: [...trail.seals, ...other.seals].map(stored), rows: [...rowsOf(trail), ...rowsOf(other), late] };
  const j = judgePeriods(both);
  expect(j.firstBreak).toBeNull();
  expect(j.suspect).toBeNull();
  expect(j.chains).toEqual([
    { chain: 'b', instance: 'b', periodsChecked: 2, recordsChecked: 5, recordsUnsealed: 2, broken: false },
    { chain: 'c', instance: 'c', periodsChecked: 3, recordsChecked: 5, recordsUnsealed: 0, broken: false },
  ]);
  expect(j).toMatchObject({ periodsChecked: 5, recordsChecked: 10, recordsUnsealed: 2 });
  const altered = judgePeriods({ ...both, rows: both.rows.map((r) => (r.chain === 'b' && r.periodMs === T0 + MIN ? { ...r, badHashes: 1 } : r)) });
  expect(altered.chains.map((c) => [c.chain, c.broken])).toEqual([
    ['b', true],
    ['c', false],
  ]);
});

test('a seal stored twice, identically (a retried insert), is one seal', () => {
  const j = judgePeriods(input(trail, { seals: [...trail.seals, trail.seals[1]].map(stored) }));
  expect(j.firstBreak).toBeNull();
  expect(j.periodsChecked).toBe(3);
});

test('two different seals for one period: digest_invalid', () => {
  const other = sealPeriods({ chain: 'c', startMs: T0, perPeriod: [1], privateKey: key.privateKey });
  const j = judgePeriods(input(trail, { seals: [...trail.seals, other.seals[0]].map(stored) }));
  expect(j.firstBreak).toMatchObject({ periodMs: T0, kind: 'digest_invalid' });
});

test('linked seals with a gap in the numbers: missing, naming the first absent number', () => {
  const a = sealPeriods({ chain: 'g', startMs: T0, perPeriod: [2], privateKey: key.privateKey });
  const b = sealPeriods({ chain: 'g', startMs: T0 + MIN, perPeriod: [2], privateKey: key.privateKey, previousDigest: a.seals[0].digest, firstSeq: 5 });
  const both = { chain: 'g', records: [...a.records, ...b.records], seals: [...a.seals, ...b.seals] };
  expect(judgePeriods(input(both)).firstBreak).toEqual({ chain: 'g', periodMs: T0 + MIN, kind: 'missing', seq: 3 });
});

test("a chain's first seal must start at number 1: missing otherwise", () => {
  const late = sealPeriods({ chain: 'l', startMs: T0, perPeriod: [2], privateKey: key.privateKey, firstSeq: 3 });
  expect(judgePeriods(input(late)).firstBreak).toEqual({ chain: 'l', periodMs: T0, kind: 'missing', seq: 1 });
});

test('the seal after the range links to another digest, rows in the gap: digest_missing at the first of them', () => {
  const orphan: PeriodRows = { chain: 'c', periodMs: T0 + MIN, count: 1, minSeq: 3, maxSeq: 3, distinctSeqs: 1, badHashes: 0, root: 'x' };
  const j = judgePeriods({
    publicKey: key.publicKey,
    seals: [stored(trail.seals[0])],
    before: new Map(),
    after: new Map([['c', stored(trail.seals[2])]]),
    rows: [...rowsOf(trail).filter((r) => r.periodMs === T0), orphan],
  });
  expect(j.firstBreak).toEqual({ chain: 'c', periodMs: T0 + MIN, kind: 'digest_missing' });
});

test('a chain seen only in the seals around the range is still linked', () => {
  const j = judgePeriods({
    publicKey: key.publicKey,
    seals: [],
    before: new Map([['c', stored(trail.seals[0])]]),
    after: new Map([['c', stored(trail.seals[2])]]),
    rows: [],
  });
  expect(j.firstBreak).toEqual({ chain: 'c', periodMs: T0 + MIN, kind: 'digest_missing' });
});

test('rows after the last seal are unsealed, not a break; a row inside the last sealed span with no seal of its own is', () => {
  const late: PeriodRows = { chain: 'c', periodMs: T0 + 3 * MIN, count: 4, minSeq: 6, maxSeq: 9, distinctSeqs: 4, badHashes: 0, root: 'x' };
  expect(judgePeriods(input(trail, { rows: [...rowsOf(trail), late] }))).toMatchObject({ recordsUnsealed: 4, firstBreak: null, suspect: null });
  const inside: PeriodRows = { ...late, periodMs: T0 + 2 * MIN + 5 };
  expect(judgePeriods(input(trail, { rows: [...rowsOf(trail), inside] })).suspect).toEqual({ chain: 'c', periodMs: T0 + 2 * MIN + 5, seal: null });
});

test('the first break across chains is the earliest period', () => {
  const other = sealPeriods({ chain: 'b', startMs: T0, perPeriod: [1, 1], privateKey: key.privateKey });
  const rows = [...rowsOf(trail), ...rowsOf(other).map((r) => (r.periodMs === T0 + MIN ? { ...r, badHashes: 1 } : r))];
  const broken = rowsOf(trail).map((r) => (r.periodMs === T0 + 2 * MIN ? { ...r, count: 2 } : r));
  const j = judgePeriods({ ...input(trail), seals: [...trail.seals, ...other.seals].map(stored), rows: [...broken, ...rows.filter((r) => r.chain === 'b')] });
  expect(j.suspect).toMatchObject({ chain: 'b', periodMs: T0 + MIN });
});

test("another gateway's chain: other_key with its key id, unless its key is trusted (AUDIT_VERIFY_KEYS_FILE)", () => {
  const other = ed25519();
  const theirs = sealPeriods({ chain: 'o', startMs: T0, perPeriod: [2, 1], privateKey: other.privateKey });
  expect(judgePeriods(input(theirs)).firstBreak).toEqual({ chain: 'o', periodMs: T0, kind: 'digest_invalid', reason: 'other_key', keyId: other.keyId });
  const otherKeys = new Map([...trustedKeys(key.publicKey, [other.publicKey])].filter(([id]) => id !== key.keyId));
  expect(judgePeriods(input(theirs, { otherKeys })).firstBreak).toBeNull();
  // A trusted key does not vouch for a seal it did not sign.
  const forged = sealPeriods({ chain: 'o', startMs: T0, perPeriod: [2, 1], privateKey: ed25519().privateKey });
  const named = forged.seals.map((s) => stored({ ...s, key_id: other.keyId }));
  expect(judgePeriods(input(forged, { otherKeys, seals: named })).firstBreak).toMatchObject({ kind: 'digest_invalid', reason: 'digest_mismatch' });
});

test('AUDIT_VERIFY_KEYS_FILE: concatenated Ed25519 PEM public keys; anything else stops start-up', () => {
  const dir = tempDir('verify-keys-');
  const a = ed25519();
  const b = ed25519();
  const pem = (k: typeof a) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(join(dir, 'keys.pem'), `# gateway a\n${pem(a)}\n# gateway b\n${pem(b)}`);
  expect(loadVerifyKeys(join(dir, 'keys.pem')).map((k) => k.export({ type: 'spki', format: 'pem' }).toString())).toEqual([pem(a), pem(b)]);
  expect(loadVerifyKeys(undefined)).toEqual([]);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(join(dir, 'rsa.pem'), rsa);
  writeFileSync(join(dir, 'none.pem'), 'not a key');
  expect(() => loadVerifyKeys(join(dir, 'rsa.pem'))).toThrow(/key 1 is rsa, not Ed25519/);
  expect(() => loadVerifyKeys(join(dir, 'none.pem'))).toThrow(/holds no PEM public key/);
  expect(() => loadVerifyKeys(join(dir, 'missing.pem'))).toThrow(
    expect.objectContaining({ code: 'GW_ERR_SIGNING_KEY', message: expect.stringContaining('ENOENT') }),
  );
});

describe('classifyRows names the kind from the suspect period records', () => {
  const seal = stored({ ...trail.seals[2], dropped: [] });
  const suspect = { chain: 'c', periodMs: T0 + 2 * MIN, seal };
  const rec = (seq: number, ok = true) => ({ seq, eventId: `e${seq}`, recordHash: `h${seq}`, recomputed: ok ? `h${seq}` : 'other' });
  test('a record whose hash is not its values: altered, first by number', () => {
    expect(classifyRows(suspect, [rec(3), rec(4, false), rec(5, false)])).toMatchObject({ kind: 'altered', eventId: 'e4', seq: 4 });
  });
  test('a duplicate number, or one outside the range: extra', () => {
    expect(classifyRows(suspect, [rec(3), rec(3), rec(4), rec(5)])).toMatchObject({ kind: 'extra', seq: 3 });
    expect(classifyRows(suspect, [rec(3), rec(4), rec(5), rec(6)])).toMatchObject({ kind: 'extra', eventId: 'e6' });
  });
  test('a number listed as dropped but stored: extra; a dropped number absent: no finding for it', () => {
    const withDrop = { ...suspect, seal: { ...seal, dropped: [4] } };
    expect(classifyRows(withDrop, [rec(3), rec(4), rec(5)])).toMatchObject({ kind: 'extra', seq: 4 });
    expect(classifyRows(withDrop, [rec(3), rec(5)])).toEqual({ chain: 'c', periodMs: T0 + 2 * MIN, kind: 'altered' });
  });
  test('a number absent: missing', () => {
    expect(classifyRows(suspect, [rec(3), rec(5)])).toEqual({ chain: 'c', periodMs: T0 + 2 * MIN, kind: 'missing', seq: 4 });
  });
  test('rows in a period with no seal: extra, naming the first', () => {
    expect(classifyRows({ ...suspect, seal: null }, [rec(9)])).toMatchObject({ kind: 'extra', eventId: 'e9', seq: 9 });
  });
});

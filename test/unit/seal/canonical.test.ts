import { CANONICAL_FORM, CANONICAL_V1, CANONICAL_V2, canonicalText, listText, recordHash } from '../../../src/seal';

/**
 * The canonical forms' text (README: Tamper evidence), pinned: a form is frozen, so a
 * change to what these give is a change to every stored hash. ClickHouse's side of the
 * same text is checked against real engines in test/integration/seal-writer.test.ts and
 * test/system/audit-verify.test.ts.
 */
function values(form: number, extra: Record<string, string | number | string[]> = {}): Record<string, string | number | string[]> {
  const v: Record<string, string | number | string[]> = { canonical_form: form };
  for (const [name, kind] of CANONICAL_V2) v[name] = kind === 'list' ? [] : kind === 'text' ? `${name}-é` : 7;
  return { ...v, ...extra };
}

test('version 2 is version 1 with the two finding lists at the end; new records use it', () => {
  expect(CANONICAL_V2.slice(0, CANONICAL_V1.length)).toEqual(CANONICAL_V1);
  expect(CANONICAL_V2.slice(CANONICAL_V1.length)).toEqual([
    ['jwt_findings', 'list'],
    ['interaction_findings', 'list'],
  ]);
  expect(CANONICAL_FORM).toBe(2);
});

test('a list is its elements length-prefixed in UTF-8 bytes, the whole length-prefixed again', () => {
  expect(listText([])).toBe('');
  expect(listText([''])).toBe('0:');
  expect(listText(['A,B'])).toBe('3:A,B');
  expect(listText(['A', 'B'])).toBe('1:A1:B');
  expect(listText(['é'])).toBe('2:é');
  const v1 = canonicalText(values(1));
  expect(canonicalText(values(2))).toBe(`${v1}0:0:`);
  expect(canonicalText(values(2, { jwt_findings: ['JWT_EXPIRED'], interaction_findings: ['INTERACTION_PATH', 'X'] }))).toBe(
    `${v1}14:11:JWT_EXPIRED22:16:INTERACTION_PATH1:X`,
  );
  // Form 1 does not read the lists: they must be empty (or absent, in a record older than them).
  const { jwt_findings: _j, interaction_findings: _i, ...older } = values(1);
  void _j;
  void _i;
  expect(canonicalText(older)).toBe(v1);
  expect(() => canonicalText(values(1, { jwt_findings: ['JWT_EXPIRED'] }))).toThrow('a form 1 record has a value in jwt_findings, which its form predates');
});

test('no two different lists give the same hash where a joined text would', () => {
  const h = (jwt: string[]) => recordHash(values(2, { jwt_findings: jwt }));
  expect(new Set([h([]), h(['']), h(['A,B']), h(['A', 'B']), h(['AB']), h(['A', '', 'B'])]).size).toBe(6);
});

test('a record naming no form, or a form not known, has no canonical text', () => {
  const { canonical_form: _omitted, ...none } = values(2);
  void _omitted;
  expect(() => canonicalText(none)).toThrow('no canonical_form');
  expect(() => canonicalText(values(3))).toThrow('3 is not a known form');
  expect(() => canonicalText(values(2, { jwt_findings: 'JWT_EXPIRED' }))).toThrow('jwt_findings is not a list');
});

import { count, duration, readableTime, renderTable, safeCell, shortInteraction, type Column } from '../../../src/cli/table';

type Row = { a: string; b: string; c: string };
const columns: Column<Row>[] = [
  { header: 'Name', value: (r) => r.a },
  { header: 'Id', value: (r) => r.b, minWidth: 6 },
  { header: 'Note', value: (r) => r.c, hidePriority: 1 },
];
const rows: Row[] = [
  { a: 'alpha', b: '0123456789abcdef', c: 'first' },
  { a: 'b', b: '42', c: 'second row' },
];

describe('renderTable', () => {
  test('aligns columns under upper-case headers, two spaces apart, no trailing blanks', () => {
    expect(renderTable(rows, columns, null).text).toBe(
      ['NAME   ID                NOTE', 'alpha  0123456789abcdef  first', 'b      42                second row', ''].join('\n'),
    );
  });

  test('too wide: hides by priority first, then cuts the cuttable column with an ellipsis, never below its minimum', () => {
    const hidden = renderTable(rows, columns, 25);
    expect(hidden.hidden).toEqual(['Note']);
    expect(hidden.text).toBe(['NAME   ID', 'alpha  0123456789abcdef', 'b      42', ''].join('\n'));
    const cut = renderTable(rows, columns, 16);
    expect(cut.text.split('\n')[1]).toBe('alpha  01234567…'); // 16 columns exactly
    const narrow = renderTable(rows, columns, 5);
    expect(narrow.text.split('\n')[1]).toBe('alpha  01234…'); // as narrow as it goes; the rest overflows
  });

  test('right alignment, and headers kept as written when asked (SQL column names)', () => {
    const r = renderTable([{ n: 5 }, { n: 1234 }], [{ header: 'count()', value: (x: { n: number }) => count(x.n), align: 'right' }], null, {
      upperCaseHeaders: false,
    });
    expect(r.text).toBe('count()\n      5\n  1,234\n');
  });

  test('control characters never reach the terminal: escape sequences shown as U+FFFD, line breaks as spaces', () => {
    const evil = { a: '\x1b[2J\x1b]0;owned\x07', b: 'x\ny', c: '\x9b31m' };
    const out = renderTable([evil], columns, null).text;
    // eslint-disable-next-line no-control-regex -- control characters are what must not be there
    expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(out).toContain('\ufffd[2J\ufffd]0;owned\ufffd');
    expect(out).toContain('x y');
    expect(safeCell('\t')).toBe(' ');
  });
});

describe('cell formats', () => {
  test('times in UTC without the T and Z; anything else as it is', () => {
    expect(readableTime('2026-12-03T12:38:19.123Z')).toBe('2026-12-03 12:38:19');
    expect(readableTime('2026-12-03T12:38:19Z')).toBe('2026-12-03 12:38:19');
    expect(readableTime('yesterday')).toBe('yesterday');
    expect(readableTime(null)).toBe('');
  });

  test('counts, durations, interactions', () => {
    expect(count(1234567)).toBe('1,234,567');
    expect(duration(3.4)).toBe('3 ms');
    expect(duration(1500)).toBe('1.5 s');
    expect(duration(185_000)).toBe('3 min 5 s');
    expect(shortInteraction('urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1')).toBe('fhir:rest:read:metadata-1');
    expect(shortInteraction('urn:other:x')).toBe('urn:other:x');
  });
});

import { countLines, lastKey, pageSlice } from '../../../src/investigate/export-encoders';

const ID1 = '5f0c8a4e-0b1d-4c7e-9a55-0d3c1e2f4a6b';
const ID2 = '0d3c1e2f-4a6b-4c7e-9a55-5f0c8a4e0b1d';

describe('export pages', () => {
  test('the last key of a CSV page, whatever a forged trace_id cell holds (quotes, commas, an escaped line break)', () => {
    const page = Buffer.from(`${ID1},abc,2026-09-01T00:00:01.000Z,rest\n` + `${ID2},"x"",\\nmore, ""y""",2026-09-01T00:00:00.007Z,"a,b"\n`, 'utf8');
    expect(countLines(page)).toBe(2);
    expect(lastKey(page, 'csv')).toEqual({ eventId: ID2, receivedAt: '2026-09-01T00:00:00.007Z' });
  });

  test('the last key of an NDJSON page', () => {
    const page = Buffer.from(
      `{"event_id":"${ID1}","trace_id":"","received_at":"2026-09-01T00:00:01.000Z"}\n{"event_id":"${ID2}","trace_id":"q\\"","received_at":"2026-09-01T00:00:00.007Z"}\n`,
    );
    expect(lastKey(page, 'ndjson')).toEqual({ eventId: ID2, receivedAt: '2026-09-01T00:00:00.007Z' });
  });

  test('CSV slices end lines with CRLF and undo TabSeparated escapes only where a line holds one', () => {
    const page = Buffer.from('a,b\n"x\\ny",c\\\\d\ne,f\n', 'utf8');
    const first = pageSlice(page, 0, 1, 'csv');
    expect(first.chunk.toString()).toBe('a,b\r\n');
    const rest = pageSlice(page, first.next, 1 << 20, 'csv');
    expect(rest.chunk.toString()).toBe('"x\ny",c\\d\r\ne,f\r\n');
    expect(rest.next).toBe(page.length);
    // NDJSON slices are views of the page, not copies.
    const nd = Buffer.from('{"a":1}\n{"a":2}\n');
    expect(pageSlice(nd, 0, 1 << 20, 'ndjson').chunk.buffer).toBe(nd.buffer);
  });
});

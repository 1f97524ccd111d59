import { EXPORT_COLUMNS, type KeysetPosition } from '../clickhouse';

/**
 * What the admin API does to an export page the engine has encoded (audit-search.ts,
 * buildExportPage): the CSV header, and CSV lines back from TabSeparated escapes to
 * RFC 4180 records with CRLF line ends. The engine builds the records: the encoding runs
 * off the gateway's event loop, and faster than csv-stringify did here (~9 µs a row for
 * these 40 columns). The page stays bytes (no JS string) wherever nothing needs undoing.
 * test/integration/investigations.test.ts checks the CSV byte for byte against
 * csv-stringify with the same options (`escape_formulas`, CRLF) on hostile cells.
 */

/** ClickHouse's TabSeparated escapes (\t, \n, \\ and the rest) undone. */
const TSV_ESCAPES: Record<string, string> = { b: '\b', f: '\f', r: '\r', n: '\n', t: '\t', '0': '\0', "'": "'", '\\': '\\' };
function unescapeTsv(v: string): string {
  return v.replace(/\\(.)/gs, (_m, c: string) => TSV_ESCAPES[c] ?? c);
}

/** The CSV header record. */
export const CSV_HEADER = `${EXPORT_COLUMNS.join(',')}\r\n`;

const LF = 0x0a;
const BACKSLASH = 0x5c;
const CR = Buffer.from('\r');

/** How many rows (lines) a page holds. */
export function countLines(page: Buffer): number {
  let n = 0;
  for (let i = page.indexOf(LF); i !== -1; i = page.indexOf(LF, i + 1)) n++;
  return n;
}

/**
 * A slice of a page's lines (from `start`, about `maxBytes` long, ending after a line)
 * as output: NDJSON as it is (a view of the page, no copy); CSV with CRLF line ends and,
 * where a line holds one, its TabSeparated escapes undone (a cell's own line breaks come
 * back, inside its quotes).
 */
export function pageSlice(page: Buffer, start: number, maxBytes: number, format: 'csv' | 'ndjson'): { chunk: Buffer; next: number } {
  const lf = start + maxBytes >= page.length ? -1 : page.indexOf(LF, start + maxBytes);
  const end = lf === -1 ? page.length : lf + 1;
  const lines = page.subarray(start, end);
  if (format === 'ndjson') return { chunk: lines, next: end };
  if (lines.indexOf(BACKSLASH) !== -1) {
    const out = lines.toString('utf8').split('\n');
    out.pop(); // after the last line's \n
    return { chunk: Buffer.from(`${out.map(unescapeTsv).join('\r\n')}\r\n`, 'utf8'), next: end };
  }
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = lines.indexOf(LF); i !== -1; i = lines.indexOf(LF, i + 1)) {
    parts.push(lines.subarray(from, i), CR);
    from = i;
  }
  parts.push(lines.subarray(from));
  return { chunk: Buffer.concat(parts), next: end };
}

const RECEIVED = EXPORT_COLUMNS.indexOf('received_at');
const EVENT = EXPORT_COLUMNS.indexOf('event_id');

/**
 * The keyset position of a page's last row, read from its encoded line: NDJSON parsed;
 * CSV split into cells with RFC 4180 quoting (a forged row may hold anything in a text
 * cell; the two key cells are a UUID and a time the engine wrote).
 */
export function lastKey(page: Buffer, format: 'csv' | 'ndjson'): KeysetPosition {
  const end = page.length - 1; // the last line's \n
  const line = page.toString('utf8', page.lastIndexOf(LF, end - 1) + 1, end);
  if (format === 'ndjson') {
    const row = JSON.parse(line) as { received_at: string; event_id: string };
    return { receivedAt: row.received_at, eventId: row.event_id };
  }
  const cells = csvCells(line.indexOf('\\') === -1 ? line : unescapeTsv(line), Math.max(RECEIVED, EVENT) + 1);
  return { receivedAt: cells[RECEIVED], eventId: cells[EVENT] };
}

/** The first `n` cells of one CSV record. */
function csvCells(record: string, n: number): string[] {
  const cells: string[] = [];
  let i = 0;
  while (cells.length < n && i <= record.length) {
    if (record[i] === '"') {
      let j = i + 1;
      let value = '';
      for (;;) {
        const q = record.indexOf('"', j);
        if (q === -1) throw new Error('export: an unterminated quoted cell');
        value += record.slice(j, q);
        if (record[q + 1] === '"') {
          value += '"';
          j = q + 2;
        } else {
          i = q + 2; // past the quote and the comma
          break;
        }
      }
      cells.push(value);
    } else {
      const comma = record.indexOf(',', i);
      const stop = comma === -1 ? record.length : comma;
      cells.push(record.slice(i, stop));
      i = stop + 1;
    }
  }
  return cells;
}

import { EXPORT_COLUMNS } from '../clickhouse';

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
  let end = start + maxBytes >= page.length ? page.length : page.indexOf(LF, start + maxBytes);
  end = end === -1 ? page.length : end + 1;
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

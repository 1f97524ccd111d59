import { EXPORT_COLUMNS, EXPORT_KINDS } from '../clickhouse';

/**
 * Export encoders: one ClickHouse TabSeparated page in, CSV or NDJSON out. Written by hand
 * for speed (an export must stream 100,000 rows/s on one core, and csv-stringify costs
 * ~9 µs a row for these 40 columns, the whole budget); test/unit/admin/export-encoders.test.ts
 * checks the CSV byte for byte against csv-stringify with the same options
 * (`escape_formulas`, CRLF record delimiter) on hostile cells.
 */

/** ClickHouse's TabSeparated escapes (\t, \n, \\ and the rest) undone. */
const TSV_ESCAPES: Record<string, string> = { b: '\b', f: '\f', r: '\r', n: '\n', t: '\t', '0': '\0', "'": "'", '\\': '\\', N: '' };
function unescapeTsv(v: string): string {
  return v.indexOf('\\') === -1 ? v : v.replace(/\\(.)/gs, (_m, c: string) => TSV_ESCAPES[c] ?? c);
}

/** ClickHouse's DateTime64 text ("2026-11-21 07:29:13.237") as ISO 8601 UTC. */
const isoTime = (v: string) => `${v.slice(0, 10)}T${v.slice(11)}Z`;
const NUMBER = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/;

/**
 * A cell a spreadsheet would run as a formula starts with = + - @ tab or CR (or their
 * full-width forms, which some spreadsheets fold to them): it is written with a single
 * quote before it, as csv-stringify's `escape_formulas` does (OWASP "CSV injection").
 */
const FORMULA_START = new Set(['=', '+', '-', '@', '\t', '\r', '\uFF1D', '\uFF0B', '\uFF0D', '\uFF20']);

/** One CSV cell (RFC 4180): quoted when it holds a quote, a comma, CR or LF; quotes doubled. */
export function csvCell(value: string, text: boolean): string {
  if (value === '') return '';
  let v = text && FORMULA_START.has(value[0]) ? `'${value}` : value;
  if (v.indexOf('"') !== -1) return `"${v.replaceAll('"', '""')}"`;
  if (v.indexOf(',') !== -1 || v.indexOf('\n') !== -1 || v.indexOf('\r') !== -1) v = `"${v}"`;
  return v;
}

/** The CSV header line (CRLF). */
export const CSV_HEADER = `${EXPORT_COLUMNS.join(',')}\r\n`;

const NDJSON_KEYS = EXPORT_COLUMNS.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c)}:`);

export interface EncodedRows {
  text: string;
  rows: number;
  /** received_at and event_id of the last row (ISO, as the cursor keeps them), or null when there were none. */
  last: { receivedAt: string; eventId: string } | null;
}

const RECEIVED = EXPORT_COLUMNS.indexOf('received_at');
const EVENT = EXPORT_COLUMNS.indexOf('event_id');

/**
 * Encodes the lines of a TabSeparated page from `start`, at most `maxRows` rows and
 * about `maxChars` characters of output (so that no page becomes one huge string), and
 * says where it stopped.
 */
export function encodeRows(tsv: string, start: number, format: 'csv' | 'ndjson', maxRows: number, maxChars: number): EncodedRows & { next: number } {
  const out: string[] = [];
  let chars = 0;
  let rows = 0;
  let pos = start;
  let lastLine: string[] | null = null;
  while (pos < tsv.length && rows < maxRows && chars < maxChars) {
    let end = tsv.indexOf('\n', pos);
    if (end === -1) end = tsv.length;
    const line = tsv.slice(pos, end);
    pos = end + 1;
    if (line.length === 0) continue;
    const f = line.split('\t');
    let s = '';
    if (format === 'ndjson') {
      for (let i = 0; i < f.length; i++) {
        const kind = EXPORT_KINDS[i];
        const v = f[i];
        s += NDJSON_KEYS[i];
        if (kind === 'number') s += NUMBER.test(v) ? v : 'null';
        else if (kind === 'time') s += `"${isoTime(v)}"`;
        else s += JSON.stringify(unescapeTsv(v));
      }
      s += '}\n';
    } else {
      for (let i = 0; i < f.length; i++) {
        const kind = EXPORT_KINDS[i];
        if (i > 0) s += ',';
        s += kind === 'time' ? isoTime(f[i]) : csvCell(kind === 'number' ? f[i] : unescapeTsv(f[i]), kind === 'text');
      }
      s += '\r\n';
    }
    out.push(s);
    chars += s.length;
    rows++;
    lastLine = f;
  }
  return {
    text: out.join(''),
    rows,
    last: lastLine === null ? null : { receivedAt: isoTime(lastLine[RECEIVED]), eventId: lastLine[EVENT] },
    next: pos,
  };
}

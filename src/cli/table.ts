/** A column of a table for people. */
export interface Column<R> {
  readonly header: string;
  value(row: R): string;
  readonly align?: 'left' | 'right';
  /**
   * When the terminal is too narrow, free text is cut first (cutFirst), then columns are hidden in rising order of this (lowest
   * first); a column without it is never hidden.
   */
  readonly hidePriority?: number;
  /** May be cut (with …) down to this width once nothing more can be hidden; absent: never cut. */
  readonly minWidth?: number;
  /** Cut down to minWidth before any column is hidden (free text, such as a query, whose end matters least). */
  readonly cutFirst?: boolean;
}

export interface Rendered {
  text: string;
  /** Headers of the columns hidden to fit the width. */
  hidden: string[];
}

const GAP = '  ';

/**
 * Aligned columns under upper-case headers, fitted to `width` (null: no limit, e.g. output to
 * a pipe): first the columns of lowest hidePriority are hidden, then the cuttable ones are cut.
 * Cell text is made safe for a terminal first (no control characters: audit values and SQL
 * results may hold anything, and an escape sequence must not reach the terminal).
 */
export function renderTable<R>(
  rows: readonly R[],
  columns: readonly Column<R>[],
  width: number | null,
  options: { upperCaseHeaders?: boolean } = {},
): Rendered {
  const cells = rows.map((r) => columns.map((c) => safeCell(c.value(r))));
  // Upper-case headers set them apart from values; SQL's column names stay as the query wrote them.
  const headers = columns.map((c) => (options.upperCaseHeaders === false ? safeCell(c.header) : c.header.toUpperCase()));
  const natural = columns.map((_c, i) => Math.max(headers[i].length, ...cells.map((row) => row[i].length)));
  const shown = columns.map(() => true);
  const widths = [...natural];
  const total = () => widths.reduce((sum, w, i) => sum + (shown[i] ? w : 0), 0) + GAP.length * (shown.filter(Boolean).length - 1);
  const hidden: string[] = [];
  if (width !== null) {
    const hideOrder = columns
      .map((c, i) => ({ p: c.hidePriority, i }))
      .filter((x): x is { p: number; i: number } => x.p !== undefined)
      .sort((a, b) => a.p - b.p);
    // Cut the widest cuttable column by one, again and again: the narrowest stay whole longest.
    const cutDown = (which: (c: Column<R>) => boolean) => {
      for (let guard = 0; total() > width && guard < 10_000; guard++) {
        let widest = -1;
        columns.forEach((c, i) => {
          if (shown[i] && which(c) && c.minWidth !== undefined && widths[i] > Math.max(c.minWidth, 1) && (widest < 0 || widths[i] > widths[widest])) widest = i;
        });
        if (widest < 0) break;
        widths[widest]--;
      }
    };
    cutDown((c) => c.cutFirst === true);
    for (const { i } of hideOrder) {
      if (total() <= width) break;
      shown[i] = false;
      hidden.push(columns[i].header);
    }
    cutDown(() => true);
  }
  const line = (values: string[]) =>
    columns
      .map((c, i) => (shown[i] ? pad(cut(values[i], widths[i]), widths[i], c.align ?? 'left') : null))
      .filter((v): v is string => v !== null)
      .join(GAP)
      .trimEnd();
  return { text: [line(headers), ...cells.map(line)].join('\n') + '\n', hidden };
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

function pad(text: string, width: number, align: 'left' | 'right'): string {
  return align === 'right' ? text.padStart(width) : text.padEnd(width);
}

/** Control characters (C0, DEL, C1) as visible U+FFFD; tabs and line breaks as a space. */
export function safeCell(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this replaces
  return text.replace(/[\t\n\r]/g, ' ').replace(/[\x00-\x1f\x7f-\x9f]/g, '\ufffd');
}

/** `2026-12-03T12:38:19.123Z` as `2026-12-03 12:38:19` (UTC; the headers say so). Anything else as it is. */
export function readableTime(iso: unknown): string {
  if (typeof iso !== 'string') return iso === null || iso === undefined ? '' : String(iso);
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:Z|\+00:00)$/.exec(iso);
  return m ? `${m[1]} ${m[2]}` : iso;
}

/** 1234567 as 1,234,567. */
export function count(n: unknown): string {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-GB') : n === null || n === undefined ? '' : String(n);
}

/** GP Connect interaction IDs without the prefix they all share. */
export function shortInteraction(id: unknown): string {
  return typeof id === 'string' ? id.replace(/^urn:nhs:names:services:gpconnect:/, '') : '';
}

/** Milliseconds, people's way: 12 ms, 1.2 s, 3 min 5 s. */
export function duration(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The width to fit tables to: the terminal's, else COLUMNS, else none (a pipe or a file). */
export function outputWidth(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): number | null {
  if (stream.isTTY && stream.columns > 0) return stream.columns;
  const columns = Number(env.COLUMNS);
  return Number.isInteger(columns) && columns > 0 ? columns : null;
}

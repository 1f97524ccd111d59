import { createHash } from 'node:crypto';
import type { Response } from 'express';
import type { AuditStore, ExportWindow, KeysetPosition, SearchFilters } from '../clickhouse';
import type { Logger } from '../log';
import { CSV_HEADER, countLines, lastKey, pageSlice } from './export-encoders';
import { storeUnavailable } from './audit-filters';

export interface ExportOptions {
  /** AUDIT_EXPORT_MAX_ROWS: most rows one export writes; its manifest says `truncated` when more matched. */
  maxRows: number;
  /** Most rows per time window (and per page read from the store; default: WINDOW_ROWS). */
  pageSize?: number;
}

/**
 * Rows per time window, at most (README "Export", "How it streams"). A window is read in
 * one query (FINAL, its bounds in PREWHERE, sorted newest first, encoded by the engine)
 * whose answer the embedded engine hands over whole: CSV rows are about 370 bytes and
 * NDJSON rows 1,080 (the keys on every line), so a window is 11 or 16 MiB. Larger
 * windows read fewer rows they do not keep: the table is sorted by consumer_asid first,
 * so a window reads a granule (8,192 rows) of every consumer it holds rows of; on
 * 1,000,000 rows of 40 consumers a 10,000-row window cost 1.7 times the CPU per row of a
 * 50,000-row one.
 */
const WINDOW_ROWS = { csv: 30_000, ndjson: 15_000 } as const;
/**
 * Bucket widths (ms) of the distribution an export plans its windows from, coarse to
 * fine: days first; a bucket holding more rows than a window is counted again by minute,
 * then by second, then by millisecond (one small query over just that bucket).
 */
const BUCKET_WIDTHS = [86_400_000, 60_000, 1_000, 1] as const;

interface Bucket {
  start: number;
  width: number;
  rows: number;
}

/**
 * The windows of one export, newest first, contiguous: each one's lower bound is the next
 * one's upper bound, the first has no upper bound and the last no lower bound (beyond the
 * filters' own), so a row is in exactly one window, rows of the same millisecond in the
 * same one, and a row shipped while the export runs is not missed for falling between
 * buckets. A window holds buckets adding up to at most `windowRows` (counted without FINAL:
 * an upper bound), or one bucket of a single millisecond that holds more (read in keyset
 * pages within the window, as is a window that grew while the export ran).
 */
class WindowPlan {
  /** Buckets not yet planned, oldest first (the next one at the end). */
  private buckets: Bucket[] = [];
  /** The next window's upper bound (exclusive); none for the first. */
  private upper: number | undefined;
  private done = false;

  constructor(
    private readonly store: AuditStore,
    private readonly filters: Omit<SearchFilters, 'limit'>,
    private readonly windowRows: number,
  ) {}

  async start(): Promise<void> {
    const width = BUCKET_WIDTHS[0];
    this.buckets = (await this.store.exportDistribution(this.filters, width)).reverse().map((b) => ({ ...b, width }));
  }

  /** The next window, or null after the last. */
  async next(): Promise<ExportWindow | null> {
    if (this.done) return null;
    let rows = 0;
    let lower: number | undefined;
    while (this.buckets.length > 0) {
      const b = this.buckets[this.buckets.length - 1];
      if (rows + b.rows > this.windowRows && b.width > 1 && rows < this.windowRows * 0.9) {
        // Too many for this window: the same span again, in finer buckets, so the window fills up
        // (a window cut short reads nearly as many granules as a full one). Nine tenths is full enough.
        const width = BUCKET_WIDTHS[BUCKET_WIDTHS.indexOf(b.width as (typeof BUCKET_WIDTHS)[number]) + 1];
        const finer = await this.store.exportDistribution(this.filters, width, { from: b.start, to: b.start + b.width });
        this.buckets.pop();
        for (let i = finer.length - 1; i >= 0; i--) this.buckets.push({ ...finer[i], width });
        continue;
      }
      if (rows > 0 && rows + b.rows > this.windowRows) break;
      rows += b.rows;
      lower = b.start;
      this.buckets.pop();
    }
    if (this.buckets.length === 0) {
      this.done = true;
      lower = undefined;
    }
    const window: ExportWindow = { from: lower, to: this.upper };
    this.upper = lower;
    return window;
  }
}

/** Output is written in slices of about this many bytes, each waiting for the client to take the last (backpressure). */
const SLICE_BYTES = 1 << 20;

/** "2026-12-03T12:45:07.123Z" → "20261203T124507Z": a file name without the characters some systems refuse (":"). */
const fileTime = (iso: string) => `${iso.slice(0, 19).replace(/[-:]/g, '')}Z`;

/**
 * An export (GET /audit/transactions?format=csv|ndjson): every matching row, newest first,
 * up to `maxRows`, read from the store in time windows (WindowPlan; one window's rows in
 * memory at a time; each read once: the export's cost grows with its rows, where keyset
 * pages over the whole range read and sorted every remaining row again for each page) and
 * written in slices that wait for the response to drain (backpressure); a client that goes
 * away stops it at the next slice. The file ends with its manifest (filters, time, who,
 * rows, truncated, and the SHA-256 of every byte before the manifest line), the same
 * SHA-256 that the access log keeps for this request.
 */
export async function streamExport(
  store: AuditStore,
  log: Logger,
  options: ExportOptions,
  filters: Omit<SearchFilters, 'limit'>,
  format: 'csv' | 'ndjson',
  res: Response,
): Promise<void> {
  res.locals.accessAction = 'export';
  res.locals.accessQuery = { ...filters, format };
  res.locals.accessHold = true;
  try {
    await runExport(store, log, options, filters, format, res);
  } finally {
    (res.locals.accessRelease as (() => void) | undefined)?.();
  }
}

async function runExport(
  store: AuditStore,
  log: Logger,
  options: ExportOptions,
  filters: Omit<SearchFilters, 'limit'>,
  format: 'csv' | 'ndjson',
  res: Response,
): Promise<void> {
  const pageSize = options.pageSize ?? WINDOW_ROWS[format];
  const exportedAt = new Date().toISOString();
  const caller = res.locals.caller as { name: string } | undefined;
  let gone = false;
  res.on('close', () => {
    gone = true;
  });
  const hash = createHash('sha256');
  let rows = 0;
  let bytes = 0;
  let truncated = false;

  /** Writes one slice, then waits for the socket to take it if it is full (or for the client to go). */
  const write = async (chunk: Buffer): Promise<void> => {
    hash.update(chunk);
    bytes += chunk.length;
    if (!res.write(chunk) && !gone) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  };

  // The plan and the first page are read before the answer starts: a store that does not answer is a 503, not a broken file.
  const plan = new WindowPlan(store, filters, pageSize);
  let window: ExportWindow | null = null;
  let after: KeysetPosition | undefined; // within the window: after a full page, the window may hold more
  const readPage = async () => {
    const size = Math.min(pageSize, options.maxRows - rows);
    return { bytes: await store.exportPage(after === undefined ? filters : { ...filters, after }, size, format, window ?? {}), size };
  };
  let page: { bytes: Buffer; size: number };
  try {
    await plan.start();
    window = await plan.next();
    page = await readPage();
  } catch (err) {
    storeUnavailable(res, err, log, 'audit export');
    return;
  }
  res.status(200);
  res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8; header=present' : 'application/x-ndjson; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="spine-audit-${fileTime(exportedAt)}.${format === 'csv' ? 'csv' : 'ndjson'}"`);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  try {
    if (format === 'csv') await write(Buffer.from(CSV_HEADER));
    for (;;) {
      const inPage = countLines(page.bytes);
      rows += inPage;
      for (let pos = 0; !gone && pos < page.bytes.length;) {
        const slice = pageSlice(page.bytes, pos, SLICE_BYTES, format);
        pos = slice.next;
        await write(slice.chunk);
      }
      if (gone) break;
      if (rows >= options.maxRows) {
        // At the cap (this page was full): one more matching row, in this window or a later one, makes the export truncated.
        truncated = (await store.exportBoundary({ ...filters, after: lastKey(page.bytes, format) }, 1)) !== null;
        break;
      }
      if (inPage < page.size) {
        // That was the window's last page: on to the next window.
        after = undefined;
        window = await plan.next();
        if (window === null) break;
      } else {
        after = lastKey(page.bytes, format);
      }
      page = { bytes: Buffer.alloc(0), size: 0 }; // let the last page go before the next is read
      page = await readPage();
    }
  } catch (err) {
    // The answer has started: the file is cut off without its manifest, which says it is incomplete.
    storeUnavailable(res, err, log, 'audit export');
    res.locals.accessStatus = 503;
    res.locals.accessRows = rows;
    res.destroy();
    return;
  }
  res.locals.accessRows = rows;
  res.locals.accessBytes = bytes;
  if (gone) {
    // 499 (as the proxy records a consumer gone mid-download): the access log says the file was never complete.
    res.locals.accessStatus = 499;
    return;
  }
  const sha256 = hash.digest('hex');
  res.locals.accessSha256 = sha256;
  const manifest = JSON.stringify({
    export: { format, filters, exported_at: exportedAt, who: caller?.name ?? '', rows, truncated, max_rows: options.maxRows, sha256 },
  });
  res.end(format === 'csv' ? `# ${manifest}\r\n` : `${manifest}\n`);
}

import { createHash } from 'node:crypto';
import type { Response } from 'express';
import type { AuditStore, KeysetPosition, SearchFilters } from '../clickhouse';
import type { Logger } from '../log';
import { CSV_HEADER, countLines, lastKey, pageSlice } from './export-encoders';
import { storeUnavailable } from './audit-filters';

export interface ExportOptions {
  /** AUDIT_EXPORT_MAX_ROWS: most rows one export writes; its manifest says `truncated` when more matched. */
  maxRows: number;
  /** Rows per keyset page read from the store (default: PAGE_ROWS). */
  pageSize?: number;
}

/**
 * Rows per keyset page. A page is "the next N rows after the last one written", and the
 * engine answers that by reading only the sort columns of the remaining rows, then the
 * other columns of just those N (lazy materialization), up to its
 * query_plan_max_limit_for_lazy_materialization, 10,000. Above it every column of every
 * remaining row is read: on 1,000,000 rows, 20,000-row pages were slower and grew the
 * gateway's memory by 250 to 310 MiB. NDJSON rows are three times CSV's (the keys on
 * every line): at 10,000 a page the RSS grew 56 to 82 MiB, at 5,000 about 26 MiB.
 */
const PAGE_ROWS = { csv: 10_000, ndjson: 5_000 } as const;
/** Output is written in slices of about this many bytes, each waiting for the client to take the last (backpressure). */
const SLICE_BYTES = 1 << 20;

/** "2026-12-03T12:45:07.123Z" → "20261203T124507Z": a file name without the characters some systems refuse (":"). */
const fileTime = (iso: string) => `${iso.slice(0, 19).replace(/[-:]/g, '')}Z`;

/**
 * An export (GET /audit/transactions?format=csv|ndjson): every matching row, newest first,
 * up to `maxRows`, read from the store in keyset pages (one page in memory at a time) and
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
  const pageSize = options.pageSize ?? PAGE_ROWS[format];
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

  // The first page is read before the answer starts: a store that does not answer is a 503, not a broken file.
  let after: KeysetPosition | undefined;
  const readPage = async () => {
    const size = Math.min(pageSize, options.maxRows - rows);
    return { bytes: await store.exportPage(after === undefined ? filters : { ...filters, after }, size, format), size };
  };
  let page: { bytes: Buffer; size: number };
  try {
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
      if (gone || inPage < page.size) break; // the client left, or that was the last page
      after = lastKey(page.bytes, format);
      if (rows >= options.maxRows) {
        // At the cap: one more matching row makes the export truncated.
        truncated = (await store.exportBoundary({ ...filters, after }, 1)) !== null;
        break;
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

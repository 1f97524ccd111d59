import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'commander';
import { failedError, usageError, CliError } from '../cli-errors';
import { addCommonOptions, clientFor, note, type CommonOptions } from '../common';
import { addFilterOptions, filterQuery, TIME_FILTERS, TRANSACTION_FILTERS } from '../filters';
import { Progress, rate } from '../progress';
import { count } from '../table';

interface ExportOptions extends CommonOptions {
  format?: 'csv' | 'ndjson';
  output?: string;
  force?: boolean;
}

/** The longest line kept whole while streaming (the manifest is the last line; rows are far shorter). */
const MAX_LINE = 16 * 1024 * 1024;

/**
 * Counts rows as the bytes pass, and hashes every byte before the last line (the rows; the
 * last line is the export's manifest), so the manifest's sha256 can be checked at the end.
 */
class ExportTap {
  readonly hash = createHash('sha256');
  /** The last line so far, complete or not: it is hashed only once another line follows it. */
  private pending: Buffer = Buffer.alloc(0);
  lines = 0;

  push(chunk: Buffer): void {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    // The last line break that is not the data's final byte ends the part known not to be the last line.
    const end = data.lastIndexOf(0x0a, data.length - 2);
    if (end >= 0) {
      const done = data.subarray(0, end + 1);
      this.hash.update(done);
      for (let i = done.indexOf(0x0a); i >= 0; i = done.indexOf(0x0a, i + 1)) this.lines++;
      this.pending = Buffer.from(data.subarray(end + 1));
    } else {
      this.pending = Buffer.from(data);
    }
    if (this.pending.length > MAX_LINE) throw failedError('the export has a line over 16 MiB: this is not an export of the admin API');
  }

  /** Complete lines so far (the last one included once its line break has come). */
  get completeLines(): number {
    return this.lines + (this.pending.length > 0 && this.pending[this.pending.length - 1] === 0x0a ? 1 : 0);
  }

  /** The last line (the manifest), without its line break. */
  lastLine(): string {
    return this.pending.toString('utf8').replace(/\r?\n$/, '');
  }
}

interface Manifest {
  rows?: unknown;
  sha256?: unknown;
  truncated?: unknown;
}

/** The manifest line: NDJSON `{"export":{...}}`; CSV a line starting `#` (the same JSON after it, or key=value text). */
function parseManifest(line: string, format: 'csv' | 'ndjson'): Manifest | null {
  if (format === 'csv' && !line.startsWith('#')) return null;
  try {
    const value = JSON.parse(format === 'csv' ? line.replace(/^#\s*/, '') : line) as { export?: unknown };
    if (value !== null && typeof value.export === 'object' && value.export !== null) return value.export as Manifest;
  } catch {
    /* not JSON: below */
  }
  // A CSV comment line ends the file whatever its text; an NDJSON line without "export" is a row, not the manifest.
  return format === 'csv' ? {} : null;
}

function formatFor(options: ExportOptions): 'csv' | 'ndjson' {
  if (options.format !== undefined) return options.format;
  if (options.output !== undefined && /\.(ndjson|jsonl)$/i.test(options.output)) return 'ndjson';
  if (options.output !== undefined && /\.csv$/i.test(options.output)) return 'csv';
  return options.json ? 'ndjson' : 'csv';
}

/**
 * `audit export`: every matching row (the API's cap applies) streamed to --output or stdout,
 * with the API's manifest as the last line. A file is written as FILE.partial and renamed
 * when the export is complete, so a file of that name is always a whole export.
 */
export function exportCommand(): Command {
  const cmd = new Command('export').description('every matching row as CSV or NDJSON, with the manifest (filters, who, when, rows, sha256) as the last line');
  addFilterOptions(cmd, [...TRANSACTION_FILTERS, ...TIME_FILTERS]);
  cmd
    .addOption(new Option('--format <format>', 'csv or ndjson (default: from the --output name, else csv; ndjson with --json)').choices(['csv', 'ndjson']))
    .option('--output <file>', 'write to this file (default: stdout)')
    .option('--force', 'replace --output if it exists');
  addCommonOptions(cmd, { json: 'NDJSON (as --format ndjson)', progress: true });
  cmd.action(async (options: ExportOptions) => {
    const format = formatFor(options);
    const query = filterQuery(options as Record<string, unknown>, [...TRANSACTION_FILTERS, ...TIME_FILTERS]);
    query.set('format', format);
    const client = clientFor(options);

    // The file is checked before the gateway is asked: a wrong name should not cost an export.
    const file = options.output;
    const partial = file === undefined ? undefined : `${file}.partial`;
    if (file !== undefined && partial !== undefined) {
      if (!options.force && existsSync(file)) throw usageError(`${file} exists: give another --output, or --force to replace it`);
      try {
        closeSync(openSync(partial, 'w'));
      } catch (err) {
        throw usageError(`cannot write ${partial} (${(err as NodeJS.ErrnoException).code})`);
      }
    }

    const progress = new Progress(Progress.wanted(options.progress), 'exporting');
    const tap = new ExportTap();
    let target: Writable;
    if (partial !== undefined) target = createWriteStream(partial);
    else target = process.stdout;
    // Ctrl-C mid-export: the partial file goes too, so nothing half-written is left behind.
    const interrupted = () => {
      progress.end();
      if (partial !== undefined) removeQuietly(partial);
      process.stderr.write('spine-gateway: export interrupted; nothing was kept\n');
      process.exit(130);
    };
    process.once('SIGINT', interrupted);
    try {
      const res = await client.getStream('/audit/transactions', query);
      const header = format === 'csv' ? 1 : 0;
      const counter = new Writable({
        write(chunk: Buffer, _enc, done) {
          try {
            tap.push(chunk);
          } catch (err) {
            done(err as Error);
            return;
          }
          progress.update(Math.max(0, tap.lines - header));
          if (target.write(chunk)) done();
          else target.once('drain', () => done());
        },
        final(done) {
          if (target === process.stdout) done();
          else target.end(done);
        },
      });
      await pipeline(res, counter);
    } catch (err) {
      process.removeListener('SIGINT', interrupted);
      progress.end();
      if (partial !== undefined) {
        target.destroy();
        removeQuietly(partial);
      }
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') return; // the reader (head, less) had enough
      if (err instanceof CliError) throw err;
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw failedError(
        `the export stopped after ${count(tap.completeLines)} lines (${why}); ${partial !== undefined ? 'nothing was kept' : 'what was printed is incomplete'}`,
      );
    }
    process.removeListener('SIGINT', interrupted);
    progress.end();

    const manifest = parseManifest(tap.lastLine(), format);
    const kept = partial !== undefined ? 'nothing was kept' : 'what was printed is incomplete';
    if (manifest === null) {
      if (partial !== undefined) removeQuietly(partial);
      throw failedError(`the export ended without its manifest line, so it is incomplete (the gateway stopped midway?); ${kept}`);
    }
    const digest = tap.hash.digest('hex');
    if (typeof manifest.sha256 === 'string' && manifest.sha256 !== digest) {
      if (partial !== undefined) removeQuietly(partial);
      throw failedError(`the export's content does not match its manifest's sha256 (changed on the way?); ${kept}`);
    }
    if (file !== undefined && partial !== undefined) renameSync(partial, file);
    const rows = typeof manifest.rows === 'number' ? manifest.rows : Math.max(0, tap.lines - (format === 'csv' ? 1 : 0));
    const check = typeof manifest.sha256 === 'string' ? ', sha256 matches the manifest' : '';
    note(
      `Exported ${count(rows)} rows${file !== undefined ? ` to ${file}` : ''} in ${(progress.elapsedMs / 1000).toFixed(1)} s (${rate(rows, progress.elapsedMs)})${check}`,
    );
    if (manifest.truncated === true) note("The export stopped at the gateway's cap (AUDIT_EXPORT_MAX_ROWS): narrow it with --from/--to for the rest");
  });
  return cmd;
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

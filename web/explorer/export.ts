/**
 * The export buttons: every row matching the search (up to the gateway's cap), as CSV or
 * NDJSON, fetched with the token in its header (a plain link could not carry it) and
 * saved under the name the gateway gives. The export's manifest (its last line: filters,
 * who, when, rows, SHA-256 of the rows' bytes) is read back to say what was saved.
 */
import { get, query, type Filters } from './api';

export interface ExportManifest {
  rows?: number;
  sha256?: string;
  truncated?: boolean;
  [field: string]: unknown;
}

export interface Saved {
  filename: string;
  bytes: number;
  manifest: ExportManifest | null;
}

export async function exportRows(format: 'csv' | 'ndjson', filters: Filters): Promise<Saved> {
  const res = await get(`/audit/transactions${query({ ...filters, format })}`, undefined, format === 'csv' ? 'text/csv' : 'application/x-ndjson');
  const blob = await res.blob();
  const filename = filenameOf(res.headers.get('Content-Disposition')) ?? `spine-audit.${format}`;
  const manifest = manifestOf(await lastLine(blob));
  const url = URL.createObjectURL(blob);
  try {
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // After the click has handed the blob to the download: the next task.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  return { filename, bytes: blob.size, manifest };
}

/** The file name of `attachment; filename="spine-audit-....csv"`, if it is a plain one (no path, no quotes). */
function filenameOf(disposition: string | null): string | null {
  const m = /filename="?([A-Za-z0-9._-]{1,200})"?/.exec(disposition ?? '');
  return m ? m[1] : null;
}

async function lastLine(blob: Blob): Promise<string> {
  const tail = await blob.slice(Math.max(0, blob.size - 65536)).text();
  const lines = tail.split(/\r?\n/).filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}

/** NDJSON: {"export":{...}}; CSV: a final line starting "#", holding the same object. */
export function manifestOf(line: string): ExportManifest | null {
  const json = line.startsWith('#') ? line.slice(1).trim() : line;
  try {
    const value = JSON.parse(json) as { export?: ExportManifest } | ExportManifest;
    if (value !== null && typeof value === 'object')
      return 'export' in value && typeof value.export === 'object' ? (value.export as ExportManifest) : (value as ExportManifest);
  } catch {
    // not JSON: a manifest in another form is still in the file, only not summarised here
  }
  return null;
}

import { out } from '../common';
import { duration, readableTime, safeCell, shortInteraction, type Column } from '../table';

export type Row = Record<string, unknown>;

const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));

/** The columns of a transactions table: the explorer's (Received … Status), then what hides first on a narrow terminal. */
export const TRANSACTION_COLUMNS: readonly Column<Row>[] = [
  { header: 'Received (UTC)', value: (r) => readableTime(r.received_at) },
  { header: 'Trace ID', value: (r) => text(r.trace_id), minWidth: 13 },
  { header: 'Consumer', value: (r) => text(r.consumer_asid) },
  { header: 'Provider', value: (r) => text(r.provider_asid) },
  { header: 'Interaction', value: (r) => shortInteraction(r.interaction_id), hidePriority: 6, minWidth: 16 },
  { header: 'Outcome', value: (r) => text(r.outcome) },
  { header: 'Status', value: (r) => text(r.status), align: 'right' },
  { header: 'Duration', value: (r) => duration(r.duration_ms), align: 'right', hidePriority: 4 },
  { header: 'Error code', value: (r) => text(r.error_code), hidePriority: 5, minWidth: 12 },
  { header: 'Consumer ODS', value: (r) => text(r.consumer_ods), hidePriority: 2 },
  { header: 'Provider ODS', value: (r) => text(r.provider_ods), hidePriority: 3 },
  { header: 'Env', value: (r) => text(r.environment), hidePriority: 1 },
];

/** Every field of each row, one per line (`--full`): what a table cannot hold. */
export async function printFull(rows: readonly Row[]): Promise<void> {
  const blocks = rows.map((row, i) => {
    const keys = Object.keys(row);
    const width = Math.max(...keys.map((k) => k.length));
    const lines = keys.map((k) => {
      const v = row[k];
      const shown = k.endsWith('_at') ? `${text(v)}` : typeof v === 'object' && v !== null ? JSON.stringify(v) : text(v);
      return `${k.padEnd(width)}  ${safeCell(shown)}`;
    });
    return `── ${i + 1} of ${rows.length} ${'─'.repeat(40)}\n${lines.join('\n')}\n`;
  });
  await out(blocks.join('\n'));
}

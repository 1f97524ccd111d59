import { INTERACTION_FINDINGS, JWT_RULES } from '../../check';
import { out } from '../common';
import { duration, readableTime, safeCell, shortInteraction, type Column } from '../table';

export type Row = Record<string, unknown>;

const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));

/** A record's finding codes (jwt_findings, interaction_findings): a list as the API answers it; anything else, none. */
function codes(v: unknown): string[] {
  return Array.isArray(v) ? v.map(text) : [];
}

/** Both checks' findings of a record, JWT rules first: the codes only (the README and the legend say what each asks). */
export function findingsOf(r: Row): string[] {
  return [...codes(r.jwt_findings), ...codes(r.interaction_findings)];
}

/** What a finding code asks for, in words (src/check's own text), or '' for a code this version does not know. */
function meaning(code: string): string {
  const all: Readonly<Record<string, string>> = { ...JWT_RULES, ...INTERACTION_FINDINGS };
  return Object.hasOwn(all, code) ? all[code] : '';
}

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
  // A token can break many rules: the codes are cut (…) before any column is hidden, then hidden after Env;
  // --full and the legend under a trace keep them whole.
  { header: 'Findings', value: (r) => findingsOf(r).join(' '), hidePriority: 1.5, minWidth: 12, cutFirst: true },
];

/**
 * The legend under a trace: each finding code its rows hold, what it asks for, and how many
 * rows hold it, so an integrator reads why without the README.
 */
export function findingsLegend(rows: readonly Row[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) for (const code of findingsOf(r)) counts.set(code, (counts.get(code) ?? 0) + 1);
  if (counts.size === 0) return '';
  const width = Math.max(...[...counts.keys()].map((c) => c.length));
  const lines = [...counts].map(
    ([code, n]) => `  ${safeCell(code).padEnd(width)}  expected ${meaning(code) || '(a code this version does not know)'} (${n} of ${rows.length})`,
  );
  return `\nFindings (what the gateway's checks expected; README "JWT check" and "Interaction check"):\n${lines.join('\n')}\n`;
}

/** Every field of each row, one per line (`--full`): what a table cannot hold. */
export async function printFull(rows: readonly Row[]): Promise<void> {
  const blocks = rows.map((row, i) => {
    const keys = Object.keys(row);
    const width = Math.max(...keys.map((k) => k.length));
    const lines = keys.map((k) => {
      const v = row[k];
      const shown = k.endsWith('_findings')
        ? codes(v).join(', ') || '(none)'
        : k.endsWith('_at')
          ? `${text(v)}`
          : typeof v === 'object' && v !== null
            ? JSON.stringify(v)
            : text(v);
      return `${k.padEnd(width)}  ${safeCell(shown)}`;
    });
    return `── ${i + 1} of ${rows.length} ${'─'.repeat(40)}\n${lines.join('\n')}\n`;
  });
  await out(blocks.join('\n'));
}

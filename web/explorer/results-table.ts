/**
 * The results table: one row per transaction, newest first. A row is focusable and opens
 * the transaction's detail with Enter, Space or a click; the arrow keys move between rows.
 */
import { byId, el, utcText } from './dom';
import { codesOf, findingWords } from './findings';

type Row = Record<string, unknown>;

const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

/** The ASID, with the organisation's ODS code under it when the record has one. */
function party(asid: unknown, ods: unknown): (string | Node)[] {
  return ods ? [text(asid), el('span', { class: 'sub', text: text(ods) })] : [text(asid)];
}

/** The interaction without the URN prefix all GP Connect ones share; the detail shows it whole. */
function shortInteraction(v: unknown): string {
  return text(v).replace(/^urn:nhs:names:services:gpconnect:(fhir:)?/, '');
}

/** test or live as a badge (the word itself, so it never rests on colour), the ENVIRONMENT setting's value plainly. */
function environment(v: unknown): (string | Node)[] {
  const value = text(v);
  return value === 'test' || value === 'live' ? [el('span', { class: `env env-${value}`, text: value })] : [value];
}

/**
 * Both checks' codes, one a line, each with what it expected as its tooltip; the detail lists
 * them with the words. A long code may break after an underscore (<wbr>), so the column
 * stays narrow enough for the table to fit a 1280-pixel screen.
 */
function findings(r: Row): (string | Node)[] {
  const codes = [...codesOf(r.jwt_findings), ...codesOf(r.interaction_findings)];
  return codes.map((code) =>
    el(
      'span',
      { class: 'finding', title: findingWords(code) ? `expected ${findingWords(code)}` : undefined },
      ...code.split('_').flatMap((part, i) => (i === 0 ? [part] : [el('wbr'), `_${part}`])),
    ),
  );
}

/** The date, with the time (to the millisecond) under it: the widest column in two short lines. */
function received(v: unknown): (string | Node)[] {
  const [date, time] = utcText(v).split(' ');
  return time === undefined ? [date] : [date, ' ', el('span', { class: 'sub', text: time })];
}

const COLUMNS: readonly { header: string; cell: (r: Row) => string | (string | Node)[]; className?: string }[] = [
  { header: 'Received', cell: (r) => received(r.received_at), className: 'nowrap' },
  { header: 'Trace ID', cell: (r) => text(r.trace_id), className: 'mono' },
  { header: 'Consumer', cell: (r) => party(r.consumer_asid, r.consumer_ods) },
  { header: 'Provider', cell: (r) => party(r.provider_asid, r.provider_ods) },
  { header: 'Interaction', cell: (r) => shortInteraction(r.interaction_id) },
  { header: 'Env', cell: (r) => environment(r.environment) },
  { header: 'Outcome', cell: (r) => text(r.outcome) },
  { header: 'Status', cell: (r) => text(r.status), className: 'number' },
  { header: 'Duration (ms)', cell: (r) => (typeof r.duration_ms === 'number' ? r.duration_ms.toFixed(1) : text(r.duration_ms)), className: 'number' },
  { header: 'Findings', cell: findings, className: 'findings' },
];

export function initResultsTable(onOpen: (row: Row, tr: HTMLTableRowElement) => void): { render(rows: Row[]): void } {
  const table = byId<HTMLTableElement>('results-table');
  const head = el('tr');
  for (const c of COLUMNS) head.append(el('th', { scope: 'col', text: c.header }));
  table.tHead?.append(head);
  const body = table.tBodies[0];
  let rows: Row[] = [];

  const open = (tr: HTMLTableRowElement) => {
    for (const other of body.rows) other.removeAttribute('aria-current');
    tr.setAttribute('aria-current', 'true');
    onOpen(rows[tr.sectionRowIndex], tr);
  };
  body.addEventListener('click', (event) => {
    const tr = (event.target as Element).closest('tr');
    if (tr !== null && tr.parentElement === body) open(tr);
  });
  body.addEventListener('keydown', (event) => {
    const tr = (event.target as Element).closest('tr');
    if (tr === null || tr.parentElement !== body) return;
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      open(tr);
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const next = event.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
      if (next instanceof HTMLTableRowElement) next.focus();
    }
  });

  return {
    render(next: Row[]) {
      rows = next;
      body.replaceChildren(
        ...rows.map((r) => {
          const tr = el('tr', { tabindex: 0, title: 'Enter: open every field of this transaction' });
          for (const c of COLUMNS) {
            const content = c.cell(r);
            tr.append(el('td', { class: c.className }, ...(typeof content === 'string' ? [content] : content)));
          }
          return tr;
        }),
      );
    },
  };
}

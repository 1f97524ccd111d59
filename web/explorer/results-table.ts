/**
 * The results table: one row per transaction, newest first. A row is focusable and opens
 * the transaction's detail with Enter, Space or a click; the arrow keys move between rows.
 */
import { byId, el, utcText } from './dom';

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

const COLUMNS: readonly { header: string; cell: (r: Row) => string | (string | Node)[]; className?: string }[] = [
  { header: 'Received', cell: (r) => utcText(r.received_at), className: 'nowrap' },
  { header: 'Trace ID', cell: (r) => text(r.trace_id), className: 'mono' },
  { header: 'Consumer', cell: (r) => party(r.consumer_asid, r.consumer_ods) },
  { header: 'Provider', cell: (r) => party(r.provider_asid, r.provider_ods) },
  { header: 'Interaction', cell: (r) => shortInteraction(r.interaction_id) },
  { header: 'Outcome', cell: (r) => text(r.outcome) },
  { header: 'Status', cell: (r) => text(r.status), className: 'number' },
  { header: 'Duration (ms)', cell: (r) => (typeof r.duration_ms === 'number' ? r.duration_ms.toFixed(1) : text(r.duration_ms)), className: 'number' },
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

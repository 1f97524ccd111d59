/**
 * The detail of one transaction: every field the API returned, in its order, under the
 * column names the filters, exports and SQL use. Escape or Close returns to the row.
 */
import { byId, el, utcText } from './dom';
import { codesOf, findingWords } from './findings';

/** A finding list: each code with what it expected, or "(none)". */
function findingList(value: unknown): HTMLElement {
  const codes = codesOf(value);
  if (codes.length === 0) return el('dd', { class: 'empty', text: '(none)' });
  return el(
    'dd',
    {},
    el(
      'ul',
      { class: 'finding-list' },
      ...codes.map((code) => el('li', {}, el('span', { class: 'finding', text: code }), findingWords(code) ? ` expected ${findingWords(code)}` : '')),
    ),
  );
}

export function initDetail(): { show(row: Record<string, unknown>, from: HTMLElement): void; hide(refocus?: boolean): void } {
  const section = byId('detail');
  const heading = byId('detail-heading');
  const list = byId('detail-fields');
  let returnTo: HTMLElement | null = null;

  /** `refocus`: back to the row it was opened from (not when the rows are about to be replaced). */
  const hide = (refocus = true) => {
    if (section.hidden) return;
    section.hidden = true;
    returnTo?.removeAttribute('aria-current');
    if (refocus && returnTo?.isConnected) returnTo.focus();
    returnTo = null;
  };
  byId('detail-close').addEventListener('click', () => hide());
  section.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') hide();
  });

  return {
    show(row, from) {
      returnTo = from;
      const name = row.trace_id ? `trace ${String(row.trace_id)}` : `event ${String(row.event_id)}`;
      heading.textContent = `Transaction ${name}, received ${utcText(row.received_at)} UTC`;
      list.replaceChildren(
        ...Object.entries(row).flatMap(([key, value]) => {
          if (key === 'jwt_findings' || key === 'interaction_findings') return [el('dt', { text: key }), findingList(value)];
          const empty = value === '' || value === null || value === undefined;
          const shown = empty ? '(empty)' : typeof value === 'object' ? JSON.stringify(value) : String(value);
          return [el('dt', { text: key }), el('dd', { class: empty ? 'empty' : undefined, text: shown })];
        }),
      );
      section.hidden = false;
      heading.focus();
    },
    hide,
  };
}

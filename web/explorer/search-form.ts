/**
 * The search form: its fields as API filters, and a 400's message shown beside the field
 * it names. Times are UTC throughout the page (the audit trail's and the logs' clock):
 * a datetime-local value is read as UTC, never as the browser's zone.
 */
import type { Filters } from './api';
import { byId, el } from './dom';
import { INTERACTION_FINDING_WORDS, JWT_FINDING_WORDS } from './findings';
import { OUTCOME_WORDS } from './outcomes';

/** Each filter the form sets, and the field that holds it. */
const FIELDS: readonly { filter: string; id: string }[] = [
  { filter: 'trace_id', id: 'f-trace-id' },
  { filter: 'consumer_asid', id: 'f-consumer-asid' },
  { filter: 'provider_asid', id: 'f-provider-asid' },
  { filter: 'interaction_id', id: 'f-interaction' },
  { filter: 'outcome', id: 'f-outcome' },
  { filter: 'environment', id: 'f-environment' },
  { filter: 'jwt_finding', id: 'f-jwt-finding' },
  { filter: 'interaction_finding', id: 'f-interaction-finding' },
  { filter: 'from', id: 'f-from' },
  { filter: 'to', id: 'f-to' },
];

export function initSearchForm(onSearch: () => void): void {
  const outcome = byId<HTMLSelectElement>('f-outcome');
  for (const [value, words] of Object.entries(OUTCOME_WORDS)) outcome.append(el('option', { value, text: `${value} (${words})` }));
  // The codes as options, each with what it expected as its tooltip (the detail says it in full).
  for (const [id, words] of [
    ['f-jwt-finding', JWT_FINDING_WORDS],
    ['f-interaction-finding', INTERACTION_FINDING_WORDS],
  ] as const) {
    const select = byId<HTMLSelectElement>(id);
    for (const [code, expected] of Object.entries(words)) select.append(el('option', { value: code, text: code, title: `expected ${expected}` }));
  }
  const form = byId<HTMLFormElement>('search-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    onSearch();
  });
  form.addEventListener('reset', () => {
    clearFieldErrors();
    // After the browser has emptied the fields: search everything again.
    setTimeout(onSearch, 0);
  });
}

/** The filters as the API takes them (empty fields left out by api.query). */
export function readFilters(): Filters {
  const filters: Filters = {};
  for (const { filter, id } of FIELDS) {
    const value = byId<HTMLInputElement | HTMLSelectElement>(id).value.trim();
    filters[filter] = filter === 'from' || filter === 'to' ? utcIso(value) : value;
  }
  return filters;
}

export function pageSize(): number {
  return Number(byId<HTMLSelectElement>('f-limit').value);
}

/** "2026-12-03T12:00" (datetime-local) → "2026-12-03T12:00:00Z"; anything else is passed on for the gateway to judge. */
function utcIso(value: string): string {
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value)) return `${value}:00Z`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(value)) return `${value}Z`;
  return value;
}

/** Shows the gateway's word on a bad filter beside its field, and moves focus there; false when no field of the form holds that filter. */
export function showFieldError(filter: string | undefined, message: string): boolean {
  clearFieldErrors();
  const field = FIELDS.find((f) => f.filter === filter);
  if (field === undefined) return false;
  const input = byId<HTMLInputElement | HTMLSelectElement>(field.id);
  const note = byId(`${field.id}-error`);
  note.textContent = message;
  note.hidden = false;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
  return true;
}

export function clearFieldErrors(): void {
  for (const { id } of FIELDS) {
    byId(id).removeAttribute('aria-invalid');
    const note = byId(`${id}-error`);
    note.textContent = '';
    note.hidden = true;
  }
}

/** The label people see for a filter (for messages about one the form does not hold). */
export function fieldLabel(filter: string): string {
  const field = FIELDS.find((f) => f.filter === filter);
  return field ? (document.querySelector(`label[for="${field.id}"]`)?.textContent ?? filter) : filter;
}

/**
 * The summary view: "who accessed provider X". The search's filters (a Provider ASID,
 * say), grouped by one dimension (the consumer's organisation by default), with each
 * group's transactions, refusals, errors, and first and last time seen.
 */
import type { Filters, Summary } from './api';
import { byId, el, utcText } from './dom';

const DIMENSIONS: Readonly<Record<string, string>> = {
  consumer_ods: 'Consumer organisation (ODS code)',
  consumer_asid: 'Consumer system (ASID)',
  provider_ods: 'Provider organisation (ODS code)',
  provider_asid: 'Provider system (ASID)',
  interaction_id: 'Interaction',
  outcome: 'Outcome',
  error_code: 'Error code',
  environment: 'Environment (test or live)',
  jwt_finding: 'JWT finding',
  interaction_finding: 'Interaction finding',
};

const FINDING_DIMENSIONS = new Set(['jwt_finding', 'interaction_finding']);

/** A group's key as shown: the group of transactions without findings says so. */
function keyText(dimension: string, value: string | undefined): string {
  if (value !== '') return String(value);
  return FINDING_DIMENSIONS.has(dimension) ? '(no finding)' : '(none recorded)';
}

export function initSummary(onChange: () => void): void {
  const select = byId<HTMLSelectElement>('group-by');
  for (const [value, label] of Object.entries(DIMENSIONS)) select.append(el('option', { value, text: label }));
  select.addEventListener('change', onChange);
}

export function groupBy(): string {
  return byId<HTMLSelectElement>('group-by').value;
}

/** The heading says what was asked, in words: "Who accessed provider 918999198993, by consumer organisation (ODS code)". */
function title(filters: Filters, dimension: string): string {
  const by = (DIMENSIONS[dimension] ?? dimension)
    .toLowerCase()
    .replace(/^jwt/, 'JWT')
    .replace(/\(ods/, '(ODS')
    .replace(/\(asid/, '(ASID');
  if (filters.provider_asid) return `Who accessed provider ${filters.provider_asid}, by ${by}`;
  return `Transactions by ${by}`;
}

export function showSummary(summary: Summary, filters: Filters): void {
  const dimension = summary.group_by[0] ?? groupBy();
  byId('summary-title').textContent = title(filters, dimension);
  const table = byId<HTMLTableElement>('summary-table');
  const head = el(
    'tr',
    {},
    el('th', { scope: 'col', text: DIMENSIONS[dimension] ?? dimension }),
    ...['Transactions', 'Refusals', 'Errors', 'First seen (UTC)', 'Last seen (UTC)'].map((h) => el('th', { scope: 'col', text: h })),
  );
  const rows = summary.groups.map((g) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row', text: keyText(dimension, g.key[dimension]) }),
      el('td', { class: 'number', text: String(g.transactions) }),
      el('td', { class: 'number', text: String(g.refusals) }),
      el('td', { class: 'number', text: String(g.errors) }),
      el('td', { class: 'nowrap', text: utcText(g.first_seen) }),
      el('td', { class: 'nowrap', text: utcText(g.last_seen) }),
    ),
  );
  table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
  const total = summary.groups.reduce((n, g) => n + g.transactions, 0);
  byId('summary-note').textContent =
    summary.groups.length === 0
      ? 'No transaction matches.'
      : `${summary.groups.length} group${summary.groups.length === 1 ? '' : 's'}, ${total} transaction${total === 1 ? '' : 's'}, busiest first.` +
        // By finding, a transaction with two codes is in two groups: the groups' sum is more than the transactions.
        (FINDING_DIMENSIONS.has(dimension) ? ' A transaction with several findings counts in each of their groups.' : '') +
        (summary.truncated ? ' Only the busiest groups are shown: narrow the search to see the rest.' : '');
}

export function clearSummary(note: string): void {
  byId('summary-table').replaceChildren();
  byId('summary-note').textContent = note;
}

/**
 * The audit explorer page: wires the search form, results, detail, paging, chart,
 * summary, export and verification status to the admin API. Each part is its own file;
 * this one holds the state they share (the filters searched, the page cursors).
 */
import { ApiError, getJson, query, type Filters, type Summary, type TransactionsPage, type Verification } from './api';
import { clearChart, drawChart, type Bucket } from './chart';
import { initDetail } from './detail';
import { byId } from './dom';
import { exportRows } from './export';
import { initResultsTable } from './results-table';
import { clearFieldErrors, fieldLabel, initSearchForm, pageSize, readFilters, showFieldError } from './search-form';
import { clearProblem, problem, say } from './status';
import { clearSummary, groupBy, initSummary, showSummary } from './summary';
import { initTokenPrompt, showTokenPrompt } from './token-prompt';
import { showChecking, showVerification, showVerifyProblem } from './verify-status';

/** The filters of the search shown, and the cursor of each page reached so far (page 1's is ''). */
let searched: Filters = {};
let cursors: string[] = [''];
let pageIndex = 0;
let lastRun: AbortController | null = null;

const detail = initDetail();
const table = initResultsTable((row, tr) => detail.show(row, tr));

/** A failure of any request: the token prompt for 401/403, else the words, where they belong. */
function failed(err: unknown, where: (text: string) => void): void {
  if ((err as Error).name === 'AbortError') return;
  if (err instanceof ApiError && (err.kind === 'unauthorized' || err.kind === 'forbidden')) {
    showTokenPrompt(
      err.kind === 'forbidden'
        ? `${err.message} Type another token.`
        : err.tokenSent
          ? 'The gateway did not accept that token (unknown, mistyped, or no longer listed). Type it again.'
          : `${err.message} Type it below; it is kept in this tab only, until you close it.`,
    );
    where('waiting for an admin token.');
    return;
  }
  where(err instanceof Error ? err.message : String(err));
}

async function loadPage(index: number, signal: AbortSignal): Promise<void> {
  const page = await getJson<TransactionsPage>(`/audit/transactions${query({ ...searched, limit: String(pageSize()), cursor: cursors[index] })}`, signal);
  pageIndex = index;
  if (page.next_cursor !== null) cursors[index + 1] = page.next_cursor;
  else cursors = cursors.slice(0, index + 1);
  detail.hide(false);
  table.render(page.transactions);
  const first = index * pageSize() + 1;
  const n = page.transactions.length;
  const where =
    n === 0 ? 'No transaction matches.' : `Rows ${first} to ${first + n - 1}, newest first${page.next_cursor === null ? '' : '; more on the next page'}.`;
  byId('page-label').textContent = `Page ${index + 1}`;
  byId('results-note').textContent = where;
  byId<HTMLButtonElement>('page-prev').disabled = index === 0;
  byId<HTMLButtonElement>('page-next').disabled = page.next_cursor === null;
  say(`Page ${index + 1}: ${where}`);
}

async function showPage(index: number): Promise<void> {
  const run = new AbortController();
  clearProblem();
  try {
    await loadPage(index, run.signal);
    byId('results-heading').focus();
  } catch (err) {
    failed(err, problem);
  }
}

/** The chart's buckets: hours, unless that would be too many groups for one summary (then days). */
async function loadChart(signal: AbortSignal): Promise<void> {
  for (const bucket of ['hour', 'day'] as Bucket[]) {
    const summary = await getJson<Summary>(`/audit/summary${query({ ...searched, group_by: `${bucket},outcome`, limit: '1000' })}`, signal);
    if (!summary.truncated || bucket === 'day') {
      drawChart(summary, bucket);
      return;
    }
  }
}

async function loadSummary(signal: AbortSignal): Promise<void> {
  showSummary(await getJson<Summary>(`/audit/summary${query({ ...searched, group_by: groupBy(), limit: '100' })}`, signal), searched);
}

/**
 * The range whose verification is shown. Verifying reads every record of the range, so a
 * new search over the same From and To (another trace ID, say) keeps the answer shown;
 * `Check again` asks anew.
 */
let verifiedRange: string | null = null;

async function loadVerification(signal: AbortSignal, force: boolean): Promise<void> {
  const range = { from: searched.from ?? '', to: searched.to ?? '' };
  const key = query(range);
  if (!force && key === verifiedRange) return;
  verifiedRange = null;
  showChecking(range.from, range.to);
  showVerification(await getJson<Verification>(`/audit/verify${key}`, signal), range.from, range.to);
  verifiedRange = key;
}

/** A refused range names its field as the form labels it ("To: must be later than from"). */
function verifyProblem(err: unknown): (text: string) => void {
  return (text) => showVerifyProblem(err instanceof ApiError && err.kind === 'invalid' && err.filter ? `${fieldLabel(err.filter)}: ${text}` : text);
}

/** A new search: page 1 of the results, and the chart, summary and verification of the same filters. */
async function search(): Promise<void> {
  lastRun?.abort();
  const run = new AbortController();
  lastRun = run;
  searched = readFilters();
  cursors = [''];
  clearProblem();
  clearFieldErrors();
  say('Searching…');
  const signal = run.signal;
  await Promise.all([
    loadPage(0, signal).catch((err: unknown) =>
      failed(err, (text) => {
        // No rows of an earlier search left under a form that now says something else.
        table.render([]);
        byId('results-note').textContent = 'No results: the search did not run.';
        byId<HTMLButtonElement>('page-next').disabled = true;
        if (err instanceof ApiError && (err.kind === 'unauthorized' || err.kind === 'forbidden')) say('The search waits for an admin token.');
        else if (!(err instanceof ApiError && err.kind === 'invalid' && showFieldError(err.filter, text))) problem(`Search: ${text}`);
        else say(`The search did not run: ${text}`);
      }),
    ),
    loadChart(signal).catch((err: unknown) => failed(err, (text) => clearChart(`No chart: ${text}`))),
    loadSummary(signal).catch((err: unknown) => failed(err, (text) => clearSummary(`No summary: ${text}`))),
    loadVerification(signal, false).catch((err: unknown) => failed(err, verifyProblem(err))),
  ]);
}

/** An export's progress and result, beside its buttons (a live region: read out too). */
async function saveExport(format: 'csv' | 'ndjson'): Promise<void> {
  const note = byId('export-note');
  note.classList.remove('failed');
  note.textContent = `Exporting every matching row as ${format.toUpperCase()}…`;
  try {
    const saved = await exportRows(format, searched);
    const m = saved.manifest;
    note.textContent =
      `Saved ${saved.filename} (${saved.bytes} bytes)` +
      (m
        ? `: ${String(m.rows)} rows${m.truncated ? ', cut at the gateway’s export limit' : ''}; SHA-256 of the rows ${String(m.sha256)}, in the file’s last line.`
        : '.');
  } catch (err) {
    failed(err, (text) => {
      note.classList.add('failed');
      note.textContent = `Not exported: ${text}`;
    });
  }
}

initTokenPrompt(() => void search());
initSearchForm(() => void search());
initSummary(() => {
  const run = new AbortController();
  loadSummary(run.signal).catch((err: unknown) => failed(err, (text) => clearSummary(`No summary: ${text}`)));
});
byId('page-prev').addEventListener('click', () => void showPage(Math.max(0, pageIndex - 1)));
byId('page-next').addEventListener('click', () => void showPage(pageIndex + 1));
byId('export-csv').addEventListener('click', () => void saveExport('csv'));
byId('export-ndjson').addEventListener('click', () => void saveExport('ndjson'));
byId('verify-again').addEventListener('click', () => {
  const run = new AbortController();
  loadVerification(run.signal, true).catch((err: unknown) => failed(err, verifyProblem(err)));
});
void search();

/**
 * The audit explorer page (GET / on the admin port) in a real browser: Debian's chromium
 * driven by playwright-core, against a real gateway with real traffic and its embedded
 * audit store, with admin tokens configured. Each state is left as a screenshot in
 * test-artifacts/explorer/ for a person to look at.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ARTIFACTS, buildExplorer, startBrowser, type Browser, type TestPage } from '../helpers/browser';
import {
  CONSUMER_ASID,
  PROVIDER_ASID,
  directoryYaml,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  waitFor,
  type RunningGateway,
  type TestProvider,
  adminTokensFile,
} from '../helpers/test-kit';
import { SEARCH_COLUMNS } from '../../src/clickhouse';
import { OUTCOMES } from '../../src/transaction';
import { OUTCOME_WORDS } from '../../web/explorer/outcomes';
import { INTERACTION_FINDINGS, JWT_RULES } from '../../src/check';

const TOKEN = 'auditor-7d41c9a0e2b85f36';
const METRICS_TOKEN = 'scraper-0a9b8c7d6e5f';
const FORWARDED = 30;
const DENIED = 3;
const TOTAL = FORWARDED + DENIED;
const traceIds: string[] = [];

let provider: TestProvider;
let gw: RunningGateway;
let admin: string;
let browser: Browser;

async function searchApi(query: string): Promise<{ transactions: Record<string, unknown>[] } | null> {
  const res = await send(`${admin}/audit/transactions?${query}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return res.status === 200 ? JSON.parse(res.body.toString('utf8')) : null;
}

beforeAll(async () => {
  buildExplorer();
  provider = await startProvider(okHandler());
  const tokens = adminTokensFile([
    { name: 'investigator', role: 'auditor', token: TOKEN },
    { name: 'prometheus', role: 'metrics', token: METRICS_TOKEN },
  ]);
  // FA565's system is a live consumer, NOAGREE's a test one: the page tells them apart.
  const directory = directoryYaml({ metadata: provider.root })
    .replace('ods: "FA565"\n', 'ods: "FA565"\n    environment: live\n')
    .replace('ods: "NOAGREE"\n', 'ods: "NOAGREE"\n    environment: test\n');
  gw = await startGateway(
    directory,
    {
      AUDIT_ENABLED: 'true',
      AUDIT_BATCH_MAX_AGE_MS: '50',
      AUDIT_SEAL_PERIOD_MS: '1000',
      ADMIN_TOKENS_FILE: tokens,
    },
    { store: 'inline' },
  );
  admin = `http://127.0.0.1:${gw.adminPort}`;
  for (let i = 0; i < FORWARDED; i++) {
    const trace = randomUUID();
    traceIds.push(trace);
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': trace }) })).status).toBe(200);
  }
  // A consumer without an agreement: refused (outcome denied), so the chart and summary have two outcomes.
  for (let i = 0; i < DENIED; i++) {
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': randomUUID(), 'Ssp-From': '200000000360' }) })).status).toBe(
      403,
    );
  }
  await waitFor(async () => ((await searchApi('limit=1000'))?.transactions.length ?? 0) === TOTAL, 20_000, `all ${TOTAL} transactions searchable`, 100);
  browser = await startBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await provider?.close();
});

/** Opens the page in a new tab and gives it the token, as a person would. */
async function signedIn(): Promise<TestPage> {
  const tab = await browser.newPage();
  await tab.page.goto(`${admin}/`);
  await tab.page.getByLabel('Token', { exact: true }).fill(TOKEN);
  await tab.page.getByRole('button', { name: 'Use this token' }).click();
  await expectRows(tab.page, 100);
  tab.problems.length = 0; // the browser's report of the first, refused (401) requests
  return tab;
}

async function expectRows(page: Page, n: number): Promise<void> {
  await page.locator(`#results-table tbody tr:nth-child(${Math.min(n, TOTAL)})`).waitFor({ timeout: 10_000 });
  await page.locator(`#results-table tbody tr:nth-child(${Math.min(n, TOTAL) + 1})`).waitFor({ state: 'detached', timeout: 10_000 });
}

/** The id of the element that has the focus. */
function focused(page: Page): Promise<string | null> {
  return page.locator(':focus').getAttribute('id');
}

/** Columns of the results table (1-based, as :nth-child counts). */
const OUTCOME_COLUMN = 7;
const ENV_COLUMN = 6;
const FINDINGS_COLUMN = 10;

function cells(page: Page, column: number): Promise<string[]> {
  return page.$$eval(`#results-table tbody tr td:nth-child(${column})`, (tds) => tds.map((td) => td.textContent ?? ''));
}

describe('explorer page', () => {
  test('served with a strict CSP, no inline script or style, the right content types, no-cache', async () => {
    const page = await send(`${admin}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    const csp = String(page.headers['content-security-policy']);
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "connect-src 'self'",
      "frame-ancestors 'none'",
      "object-src 'none'",
      "form-action 'none'",
      "base-uri 'none'",
    ])
      expect(csp.split(';').map((d) => d.trim())).toContain(directive);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https:|data:|\*/);
    const html = page.body.toString('utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i); // every script is a file of this origin
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i); // no inline style, no inline handlers
    expect(html).not.toMatch(/https?:\/\//); // nothing from another origin: works offline
    for (const [path, type] of [
      ['/explorer/explorer.js', 'text/javascript; charset=utf-8'],
      ['/explorer/explorer-style.css', 'text/css; charset=utf-8'],
      ['/explorer/favicon.svg', 'image/svg+xml'],
    ]) {
      const asset = await send(`${admin}${path}`);
      expect(asset.status).toBe(200);
      expect(asset.headers['content-type']).toBe(type);
      expect(asset.headers['x-content-type-options']).toBe('nosniff');
      expect(asset.headers['content-security-policy']).toBe(csp);
    }
    expect((await send(`${admin}/explorer/nothing.js`)).status).toBe(404);
    expect((await send(`${admin}/explorer/../package.json`)).status).toBe(404);
  });

  test('refused without a token: the page asks for one, then works after it is typed; only the token is stored, never in a URL', async () => {
    const tab = await browser.newPage();
    const { page } = tab;
    await page.goto(`${admin}/`);
    const token = page.getByLabel('Token', { exact: true });
    await token.waitFor({ state: 'visible' });
    await expect(page.locator('#token-why').textContent()).resolves.toContain('auditor');
    await expect(focused(page)).resolves.toBe('token');
    expect(await page.locator('#results-table tbody tr').count()).toBe(0);
    await tab.screenshot('01-token-prompt');

    // A token the gateway does not know: refused, and said so.
    await token.fill('not-a-token-at-all');
    await page.keyboard.press('Enter');
    await page.locator('#token-why', { hasText: 'did not accept that token' }).waitFor({ timeout: 10_000 });
    expect(await page.evaluate('sessionStorage.length')).toBe(0); // a refused token is not kept

    // A token without the auditor role: still refused, in words.
    await token.fill(METRICS_TOKEN);
    await page.keyboard.press('Enter');
    await page.locator('#token-why', { hasText: 'may not read the audit trail' }).waitFor({ timeout: 10_000 });
    await tab.screenshot('02-token-wrong-role');

    await token.fill(TOKEN);
    await page.getByRole('button', { name: 'Use this token' }).click();
    await expectRows(page, 100);
    expect(await page.locator('#token-section').isHidden()).toBe(true);
    const storage = await page.evaluate('({ session: Object.entries(sessionStorage), local: localStorage.length, cookie: document.cookie })');
    expect(storage).toEqual({ session: [['spine-gateway-admin-token', TOKEN]], local: 0, cookie: '' });
    expect(tab.urls.filter((u) => u.includes(TOKEN))).toEqual([]);
    expect((await browser.context.cookies()).length).toBe(0);
    // Forgotten on request: nothing left in storage or on the screen, and the page asks again.
    await page.getByRole('button', { name: 'Forget the token' }).click();
    await token.waitFor({ state: 'visible' });
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    expect(await page.locator('#results-table tbody tr').count()).toBe(0);
    await tab.screenshot('02b-token-forgotten');
    // The browser's own console reports each 401/403 answer as a failed resource; nothing else may be there.
    expect(tab.problems.filter((p) => !/status of 40[13]/.test(p))).toEqual([]);
    await tab.page.close();
  });

  test('type a trace ID and see its row; open every field with Enter; Escape goes back to the row', async () => {
    const tab = await signedIn();
    const { page } = tab;
    await tab.screenshot('03-first-page');
    const trace = traceIds[7];
    await page.getByLabel('Trace ID').fill(trace.toUpperCase()); // any case: consumers send either
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, 1);
    const headers = await page.$$eval('#results-table thead th', (ths) => ths.map((th) => th.textContent));
    expect(headers).toEqual(expect.arrayContaining(['Received', 'Trace ID', 'Consumer', 'Provider', 'Interaction', 'Outcome', 'Status']));
    expect(await cells(page, 2)).toEqual([trace]);
    // Every column in view on a 1280-pixel screen, without scrolling sideways.
    expect(await page.$eval('#results .table-wrap', (w) => w.scrollWidth <= w.clientWidth)).toBe(true);
    expect(await cells(page, OUTCOME_COLUMN)).toEqual(['forwarded']);
    await tab.screenshot('04-trace-found');

    // Keyboard only: Tab reaches the row, Enter opens it.
    await page.getByRole('button', { name: 'Search', exact: true }).focus();
    for (let i = 0; i < 20 && (await page.locator('#results-table tbody tr:focus').count()) === 0; i++) await page.keyboard.press('Tab');
    expect(await page.locator('#results-table tbody tr:focus').count()).toBe(1);
    await page.keyboard.press('Enter');
    const detail = page.locator('#detail');
    await detail.waitFor({ state: 'visible' });
    await expect(focused(page)).resolves.toBe('detail-heading');
    const fields = await page.$$eval('#detail-fields dt', (dts) => dts.map((dt) => dt.textContent));
    expect(fields).toEqual([...SEARCH_COLUMNS]);
    const value = (name: string) =>
      page.$eval(`#detail-fields`, (dl, n) => [...dl.querySelectorAll('dt')].find((dt) => dt.textContent === n)?.nextElementSibling?.textContent, name);
    await expect(value('trace_id')).resolves.toBe(trace);
    await expect(value('consumer_asid')).resolves.toBe(CONSUMER_ASID);
    await expect(value('provider_asid')).resolves.toBe(PROVIDER_ASID);
    await tab.screenshot('05-detail');
    await page.keyboard.press('Escape');
    await detail.waitFor({ state: 'hidden' });
    await expect(page.locator('#results-table tbody tr:focus').count()).resolves.toBe(1);
    expect(tab.problems).toEqual([]);
    await page.close();
  });

  test('pages forward and back with the cursor', async () => {
    const tab = await signedIn();
    const { page } = tab;
    await page.getByLabel('Rows per page').selectOption('25');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, 25);
    const first = await cells(page, 2);
    expect(await page.getByRole('button', { name: 'Previous page' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Next page' }).click();
    await expectRows(page, TOTAL - 25);
    const second = await cells(page, 2);
    expect(second.filter((t) => first.includes(t) && t !== '')).toEqual([]);
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await expect(page.locator('#page-label').textContent()).resolves.toBe('Page 2');
    await tab.screenshot('06-page-2');
    await page.getByRole('button', { name: 'Previous page' }).click();
    await expectRows(page, 25);
    expect(await cells(page, 2)).toEqual(first);
    expect(tab.problems).toEqual([]);
    await page.close();
  });

  test("From and To are UTC, whatever the browser's time zone", async () => {
    const tab = await signedIn();
    const { page } = tab;
    const utc = (ms: number) => new Date(ms).toISOString().slice(0, 19); // what a datetime-local field holds, read as UTC
    await page.getByLabel('From', { exact: true }).fill(utc(Date.now() - 15 * 60_000));
    await page.getByLabel('To', { exact: true }).fill(utc(Date.now() + 15 * 60_000));
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, TOTAL);
    await page.getByLabel('From', { exact: true }).fill(utc(Date.now() + 60 * 60_000));
    await page.getByLabel('To', { exact: true }).fill(utc(Date.now() + 120 * 60_000));
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#results-note', { hasText: 'No transaction matches.' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#results-table tbody tr').count()).toBe(0);
    expect(tab.problems).toEqual([]);
    // A range that ends before it starts: verify refuses it, and the page says which field.
    await page.getByLabel('To', { exact: true }).fill(utc(Date.now() - 60 * 60_000));
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#verify-status', { hasText: 'Not checked: To: must be later than from' }).waitFor({ timeout: 10_000 });
    await page.close();
  });

  test('a bad filter is shown in words beside its field', async () => {
    const tab = await signedIn();
    const { page } = tab;
    const asid = page.getByLabel('Consumer ASID');
    await asid.fill('not-an-asid');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#f-consumer-asid-error').waitFor({ state: 'visible' });
    await expect(page.locator('#f-consumer-asid-error').textContent()).resolves.toContain('ASID');
    await expect(asid.getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(focused(page)).resolves.toBe('f-consumer-asid');
    await tab.screenshot('07-bad-filter');
    // The browser reports the 400 answer as a failed resource; nothing else.
    expect(tab.problems.filter((p) => !/status of 400/.test(p))).toEqual([]);
    await page.close();
  });

  test('the chart counts the results over time by outcome, and its numbers are there as a table', async () => {
    const tab = await signedIn();
    const { page } = tab;
    await page.locator('#chart canvas').waitFor({ timeout: 10_000 });
    const legend = await page.$$eval('#chart .u-legend .u-series th', (ths) => ths.map((th) => th.textContent?.trim()));
    expect(legend).toEqual(expect.arrayContaining(['denied', 'forwarded']));
    const label = (await page.locator('#chart').getAttribute('aria-label')) ?? '';
    expect(label).toContain(`denied ${DENIED}`);
    expect(label).toContain(`forwarded ${FORWARDED}`);
    await page.getByText("The chart's numbers").click();
    const columns = await page.$$eval('#chart-table thead th', (ths) => ths.map((th) => th.textContent));
    const totals = await page.$$eval('#chart-table tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.textContent))).reduce((sum, row) => sum.map((v, i) => v + row[i])),
    );
    expect(Object.fromEntries(columns.slice(1).map((c, i) => [c, totals[i]]))).toEqual({ denied: DENIED, forwarded: FORWARDED });
    await tab.screenshot('08-chart');
    await page.locator('#chart').screenshot({ path: join(ARTIFACTS, '08-chart-close-up.png') });
    expect(tab.problems).toEqual([]);
    await page.close();
  });

  test('the summary answers "who accessed provider X", by organisation or by system, with counts', async () => {
    const tab = await signedIn();
    const { page } = tab;
    await page.getByLabel('Provider ASID').fill(PROVIDER_ASID);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#summary-title', { hasText: `Who accessed provider ${PROVIDER_ASID}` }).waitFor({ timeout: 10_000 });
    const table = () =>
      page.$$eval('#summary-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('th, td')].slice(0, 4).map((c) => c.textContent)));
    await page.locator('#summary-table tbody tr').nth(1).waitFor();
    expect(await table()).toEqual([
      ['FA565', String(FORWARDED), '0', '0'],
      ['NOAGREE', String(DENIED), String(DENIED), '0'],
    ]);
    await tab.screenshot('09-summary-by-organisation');
    await page.getByLabel('Group by').selectOption('consumer_asid');
    await page.locator('#summary-table thead th', { hasText: 'Consumer system (ASID)' }).waitFor({ timeout: 10_000 });
    expect(await table()).toEqual([
      [CONSUMER_ASID, String(FORWARDED), '0', '0'],
      ['200000000360', String(DENIED), String(DENIED), '0'],
    ]);
    await tab.screenshot('10-summary-by-system');
    expect(tab.problems).toEqual([]);
    await page.close();
  });

  test('export: CSV and NDJSON of every matching row saved as files, each with its manifest', async () => {
    const tab = await signedIn();
    const { page } = tab;
    for (const format of ['csv', 'ndjson'] as const) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: `Export ${format.toUpperCase()}` }).click()]);
      expect(download.suggestedFilename()).toMatch(new RegExp(`^spine-audit-[0-9TZ:.-]+\\.${format}$`));
      const file = readFileSync((await download.path())!);
      const text = file.toString('utf8');
      const lines = text.split('\n').filter((l) => l !== '');
      const last = lines[lines.length - 1];
      const manifest = JSON.parse(format === 'csv' ? last.replace(/^#\s*/, '') : last).export; // CSV: the same object after '# '
      const data = format === 'csv' ? lines.slice(1, -1) : lines.slice(0, -1); // CSV: a header line first
      expect(data.length).toBe(TOTAL);
      expect(manifest).toMatchObject({ rows: TOTAL, who: 'investigator', truncated: false });
      const covered = file.subarray(0, file.lastIndexOf(Buffer.from(last)));
      expect(manifest.sha256).toBe(createHash('sha256').update(covered).digest('hex'));
      await page.locator('#export-note', { hasText: `Saved ${download.suggestedFilename()}` }).waitFor({ timeout: 10_000 });
      await expect(page.locator('#export-note').textContent()).resolves.toContain(manifest.sha256);
      if (format === 'ndjson') {
        const traces = data.map((l) => JSON.parse(l).trace_id);
        expect(traces).toEqual(expect.arrayContaining(traceIds));
      }
    }
    await tab.screenshot('11-exported');

    // The export follows the search shown: one trace, one row.
    await page.getByLabel('Trace ID').fill(traceIds[3]);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, 1);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export NDJSON' }).click()]);
    const lines = readFileSync((await download.path())!, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.length).toBe(2);
    expect(JSON.parse(lines[0]).trace_id).toBe(traceIds[3]);
    expect(JSON.parse(lines[1]).export).toMatchObject({ rows: 1 });
    expect(tab.urls.filter((u) => u.includes(TOKEN))).toEqual([]);
    expect(tab.problems).toEqual([]);
    await page.close();
  });

  // Near the end: it changes the data behind the gateway's back.
  test('a tampered range shows as broken, naming the period and the kind', async () => {
    const tab = await signedIn();
    const { page } = tab;
    const utc = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    const from = utc(Date.now() - 15 * 60_000);
    const to = utc(Date.now() + 15 * 60_000);
    // Every record of the range sealed (periods of a second here) before anything is changed.
    const range = `from=${from}Z&to=${to}Z`;
    await waitFor(
      async () => {
        const r = await send(`${admin}/audit/verify?${range}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
        const v = r.status === 200 ? JSON.parse(r.body.toString('utf8')) : null;
        return v !== null && v.status === 'intact' && v.records_checked === TOTAL && v.records_unsealed === 0;
      },
      20_000,
      'every record sealed',
      250,
    );
    await page.getByLabel('From', { exact: true }).fill(from);
    await page.getByLabel('To', { exact: true }).fill(to);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const status = page.locator('#verify-status');
    await page.locator('#verify-status.intact').waitFor({ timeout: 15_000 });
    await expect(status.textContent()).resolves.toContain(`${TOTAL} records checked`);
    await tab.screenshot('12-verify-intact');

    // One record's status changed in ClickHouse, as someone with access to the database could.
    const store = gw.gateway.audit!.store!;
    const client = (store as unknown as { client: { command(q: { query: string; clickhouse_settings?: Record<string, unknown> }): Promise<unknown> } }).client;
    await client.command({
      query: `ALTER TABLE ${store.table} UPDATE status = 500 WHERE trace_id = '${traceIds[5]}'`,
      clickhouse_settings: { mutations_sync: '2' },
    });
    await page.getByRole('button', { name: 'Check again' }).click();
    await page.locator('#verify-status.broken').waitFor({ timeout: 15_000 });
    const text = (await status.textContent()) ?? '';
    expect(text).toContain('Broken');
    expect(text).toContain('kind: altered');
    expect(text).toMatch(/period starting \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
    await tab.screenshot('13-verify-broken');
    expect(tab.problems).toEqual([]);
    await page.close();
  });

  test('test and live at a glance; filter by environment and by finding; a record shows its findings with what each expected', async () => {
    const tab = await signedIn();
    const { page } = tab;
    const headers = await page.$$eval('#results-table thead th', (ths) => ths.map((th) => th.textContent));
    expect([headers[ENV_COLUMN - 1], headers[OUTCOME_COLUMN - 1], headers[FINDINGS_COLUMN - 1]]).toEqual(['Env', 'Outcome', 'Findings']);
    const envs = await cells(page, ENV_COLUMN);
    expect([envs.filter((e) => e === 'live').length, envs.filter((e) => e === 'test').length]).toEqual([FORWARDED, DENIED]);
    // A badge holding the word: seen at a glance, read out as the word.
    expect(await page.locator('#results-table tbody .env-test').count()).toBe(DENIED);
    await page.getByLabel('Environment').fill('test');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, DENIED);
    expect(await cells(page, ENV_COLUMN)).toEqual(['test', 'test', 'test']);
    expect(await cells(page, OUTCOME_COLUMN)).toEqual(['denied', 'denied', 'denied']);
    await tab.screenshot('14-environment-test');

    // Records with findings (the checks that write them are other work): put into the store, in a day of their own
    // (after every test that counts all rows).
    const store = gw.gateway.audit!.store!;
    const base = { version: 2, duration_ms: 12, consumer_asid: CONSUMER_ASID, consumer_ods: 'FA565', provider_asid: PROVIDER_ASID, provider_ods: 'A20047' };
    const stored = [
      {
        jwt_findings: ['JWT_EXPIRED', 'JWT_SCOPE_NOT_FOR_INTERACTION'],
        interaction_findings: ['INTERACTION_METHOD'],
        environment: 'test',
        outcome: 'forwarded',
      },
      { jwt_findings: ['JWT_EXPIRED'], interaction_findings: [], environment: 'live', outcome: 'forwarded' },
      { jwt_findings: [], interaction_findings: ['INTERACTION_PATH'], environment: 'test', outcome: 'denied' },
    ].map((r, i) => ({
      ...base,
      ...r,
      event_id: randomUUID(),
      trace_id: randomUUID(),
      received_at: `2026-11-15T09:0${i}:00.000Z`,
      completed_at: `2026-11-15T09:0${i}:00.012Z`,
      interaction_id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
      method: 'GET',
      status: r.outcome === 'denied' ? 400 : 200,
    }));
    await store.insertLines(stored.map((r) => JSON.stringify(r)).join('\n'));
    await page.getByLabel('Environment').fill('');
    await page.getByLabel('From', { exact: true }).fill('2026-11-15T00:00:00');
    await page.getByLabel('To', { exact: true }).fill('2026-11-16T00:00:00');
    await page.getByLabel('JWT finding').selectOption('JWT_EXPIRED');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, 2);
    // Newest first: the live row, then the test row with three codes, one a line.
    expect(await cells(page, ENV_COLUMN)).toEqual(['live', 'test']);
    const codes = await page.$$eval(`#results-table tbody tr td:nth-child(${FINDINGS_COLUMN})`, (tds) =>
      tds.map((td) => [...td.querySelectorAll('.finding')].map((s) => s.textContent)),
    );
    expect(codes).toEqual([['JWT_EXPIRED'], ['JWT_EXPIRED', 'JWT_SCOPE_NOT_FOR_INTERACTION', 'INTERACTION_METHOD']]);
    expect(await page.$eval('#results .table-wrap', (w) => w.scrollWidth <= w.clientWidth)).toBe(true);
    await tab.screenshot('15-jwt-finding');

    // The record: each list with what every code expected.
    await page.locator('#results-table tbody tr').nth(1).click();
    await page.locator('#detail').waitFor({ state: 'visible' });
    const items = (name: string) =>
      page.$eval(
        '#detail-fields',
        (dl, n) =>
          [...([...dl.querySelectorAll('dt')].find((dt) => dt.textContent === n)?.nextElementSibling?.querySelectorAll('li') ?? [])].map(
            (li) => li.textContent,
          ),
        name,
      );
    await expect(items('jwt_findings')).resolves.toEqual([
      `JWT_EXPIRED expected ${JWT_RULES.JWT_EXPIRED}`,
      `JWT_SCOPE_NOT_FOR_INTERACTION expected ${JWT_RULES.JWT_SCOPE_NOT_FOR_INTERACTION}`,
    ]);
    await expect(items('interaction_findings')).resolves.toEqual([`INTERACTION_METHOD expected ${INTERACTION_FINDINGS.INTERACTION_METHOD}`]);
    await tab.screenshot('16-record-findings');
    await page.keyboard.press('Escape');

    // An interaction finding, and the summary by finding over the day.
    await page.getByLabel('JWT finding').selectOption('');
    await page.getByLabel('Interaction finding').selectOption('INTERACTION_PATH');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, 1);
    expect(await cells(page, OUTCOME_COLUMN)).toEqual(['denied']);
    await page.getByLabel('Interaction finding').selectOption('');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expectRows(page, 3);
    await page.getByLabel('Group by').selectOption('jwt_finding');
    await page.locator('#summary-table thead th', { hasText: 'JWT finding' }).waitFor({ timeout: 10_000 });
    const summary = await page.$$eval('#summary-table tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('th, td')].slice(0, 2).map((c) => c.textContent)),
    );
    expect(summary).toEqual([
      ['JWT_EXPIRED', '2'],
      ['(no finding)', '1'],
      ['JWT_SCOPE_NOT_FOR_INTERACTION', '1'],
    ]);
    await expect(page.locator('#summary-title').textContent()).resolves.toBe('Transactions by JWT finding');
    await expect(page.locator('#summary-note').textContent()).resolves.toContain('counts in each of their groups');
    await tab.screenshot('17-summary-by-finding');
    expect(tab.problems).toEqual([]);
    await page.close();
  });

  test("the page's outcome list is the gateway's", () => {
    expect(Object.keys(OUTCOME_WORDS).sort()).toEqual([...OUTCOMES].sort());
  });
});

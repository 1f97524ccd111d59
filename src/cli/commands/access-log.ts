import { Command } from 'commander';
import { addCommonOptions, clientFor, note, out, printJson, printTable, type CommonOptions } from '../common';
import { filterQuery, TIME_FILTERS, addFilterOptions } from '../filters';
import { count, duration, readableTime, type Column } from '../table';

type Entry = Record<string, unknown>;

interface AccessLogOptions extends CommonOptions {
  who?: string;
  action?: string;
  limit?: string;
  cursor?: string;
}

const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));

/** What was asked, short: an SQL query's text, else the parameters as name=value (the route when there were none). */
function asked(e: Entry): string {
  const q = e.query;
  if (q === null || typeof q !== 'object') return text(q) || text(e.route);
  const params = q as Record<string, unknown>;
  if (typeof params.sql === 'string') return params.sql;
  const pairs = Object.entries(params).map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : text(v)}`);
  return pairs.length > 0 ? pairs.join(' ') : text(e.route);
}

const COLUMNS: readonly Column<Entry>[] = [
  { header: 'At (UTC)', value: (e) => readableTime(e.at) },
  { header: 'Who', value: (e) => text(e.who), minWidth: 10 },
  { header: 'Role', value: (e) => text(e.role), hidePriority: 1 },
  { header: 'Client', value: (e) => text(e.client_ip), hidePriority: 2 },
  { header: 'Action', value: (e) => text(e.action) },
  { header: 'Status', value: (e) => text(e.status), align: 'right' },
  { header: 'Rows', value: (e) => count(e.rows), align: 'right' },
  { header: 'Duration', value: (e) => duration(e.duration_ms), align: 'right', hidePriority: 3 },
  { header: 'Asked', value: asked, hidePriority: 4, minWidth: 24, cutFirst: true },
];

/** `audit access-log`: GET /audit/access-log, the auditors' own uses of the audit API, newest first. */
export function accessLogCommand(): Command {
  const cmd = new Command('access-log').description(
    'who used the audit API: searches, summaries, exports, verifies, SQL, and refused attempts (401/403), newest first',
  );
  cmd.option('--who <name>', "an admin token's name").option('--action <action>', 'search, export, summary, verify, public_key, access_log or sql');
  addFilterOptions(cmd, TIME_FILTERS);
  cmd.option('--limit <n>', 'entries per page').option('--cursor <cursor>', 'the next page: the cursor the previous page printed');
  addCommonOptions(cmd, { json: 'the API\'s answer as it is: {"entries":[...],"next_cursor":...}' });
  cmd.action(async (options: AccessLogOptions) => {
    const query = filterQuery(options as Record<string, unknown>, TIME_FILTERS);
    if (options.who !== undefined) query.set('who', options.who);
    if (options.action !== undefined) query.set('action', options.action);
    if (options.limit !== undefined) query.set('limit', options.limit);
    if (options.cursor !== undefined) query.set('cursor', options.cursor);
    const page = await clientFor(options).getJson<{ entries: Entry[]; next_cursor: string | null }>('/audit/access-log', query);
    if (options.json) return printJson(page);
    if (page.entries.length === 0) {
      await out('No entries match.\n');
      return;
    }
    await printTable(page.entries, COLUMNS);
    if (page.next_cursor !== null) note(`More entries: the same command with --cursor ${page.next_cursor}`);
  });
  return cmd;
}

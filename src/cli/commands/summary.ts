import { Command } from 'commander';
import { addCommonOptions, clientFor, note, out, printJson, printTable, type CommonOptions } from '../common';
import { addFilterOptions, filterQuery, TIME_FILTERS, TRANSACTION_FILTERS } from '../filters';
import { count, readableTime, shortInteraction, type Column } from '../table';

interface Group {
  key: Record<string, unknown>;
  transactions: number;
  refusals: number;
  errors: number;
  first_seen: string;
  last_seen: string;
}

interface Summary {
  group_by: string[];
  groups: Group[];
  truncated: boolean;
}

interface SummaryOptions extends CommonOptions {
  groupBy: string;
  limit?: string;
}

const DIMENSIONS =
  'consumer_asid, consumer_ods, provider_asid, provider_ods, interaction_id, outcome, error_code, environment, jwt_requesting_organization, jwt_finding, interaction_finding, hour, day';

/** A key's value for people: hours and days as readable times, interactions without their shared prefix. */
function keyText(dimension: string, value: unknown): string {
  if (value === null || value === undefined) return '';
  if (dimension === 'hour') return readableTime(value).slice(0, 16);
  if (dimension === 'day') return readableTime(value).slice(0, 10);
  if (dimension === 'interaction_id') return shortInteraction(value);
  // A finding dimension's group of transactions with none.
  if ((dimension === 'jwt_finding' || dimension === 'interaction_finding') && value === '') return '(none)';
  return String(value);
}

/** `audit summary --group-by a[,b]`: GET /audit/summary, counts per group, most transactions first. */
export function summaryCommand(): Command {
  const cmd = new Command('summary')
    .description('counts per group (who accessed provider X, by organisation): transactions, refusals, errors, first and last seen')
    .requiredOption('--group-by <dimensions>', `one or two of: ${DIMENSIONS} (comma-separated)`);
  addFilterOptions(cmd, [...TRANSACTION_FILTERS, ...TIME_FILTERS]);
  cmd.option('--limit <n>', 'at most this many groups');
  addCommonOptions(cmd, { json: 'the API\'s answer as it is: {"group_by":[...],"groups":[...],"truncated":...}' });
  cmd.action(async (options: SummaryOptions) => {
    const query = new URLSearchParams({ group_by: options.groupBy.replace(/\s+/g, '') });
    for (const [k, v] of filterQuery(options as unknown as Record<string, unknown>, [...TRANSACTION_FILTERS, ...TIME_FILTERS])) query.set(k, v);
    if (options.limit !== undefined) query.set('limit', options.limit);
    const summary = await clientFor(options).getJson<Summary>('/audit/summary', query);
    if (options.json) return printJson(summary);
    if (summary.groups.length === 0) {
      await out('No transactions match.\n');
      return;
    }
    const timeSuffix = (d: string) => (d === 'hour' || d === 'day' ? ' (UTC)' : '');
    const columns: Column<Group>[] = [
      ...summary.group_by.map((d): Column<Group> => ({ header: `${d.replace(/_/g, ' ')}${timeSuffix(d)}`, value: (g) => keyText(d, g.key[d]), minWidth: 12 })),
      { header: 'Transactions', value: (g) => count(g.transactions), align: 'right' },
      { header: 'Refusals', value: (g) => count(g.refusals), align: 'right' },
      { header: 'Errors', value: (g) => count(g.errors), align: 'right' },
      { header: 'First seen (UTC)', value: (g) => readableTime(g.first_seen), hidePriority: 1 },
      { header: 'Last seen (UTC)', value: (g) => readableTime(g.last_seen), hidePriority: 2 },
    ];
    await printTable(summary.groups, columns);
    if (summary.truncated) note(`Only the first ${count(summary.groups.length)} groups: narrow the filters, or raise --limit`);
  });
  return cmd;
}

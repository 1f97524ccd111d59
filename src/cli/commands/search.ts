import { Command } from 'commander';
import { addCommonOptions, clientFor, note, out, printJson, printTable, type CommonOptions } from '../common';
import { addFilterOptions, filterQuery, TIME_FILTERS, TRANSACTION_FILTERS } from '../filters';
import { printFull, TRANSACTION_COLUMNS, type Row } from './transaction-view';

interface SearchOptions extends CommonOptions {
  limit?: string;
  cursor?: string;
  full?: boolean;
}

/** `audit search`: one page of GET /audit/transactions, newest first. */
export function searchCommand(): Command {
  const cmd = new Command('search').description('find transactions by any of these filters: newest first, a page at a time');
  addFilterOptions(cmd, [...TRANSACTION_FILTERS, ...TIME_FILTERS]);
  cmd.option('--limit <n>', 'rows per page, 1 to 1000 (default 100)').option('--cursor <cursor>', 'the next page: the cursor the previous page printed');
  cmd.option('--full', 'every field of each row, one per line, instead of the table');
  addCommonOptions(cmd, { json: 'the API\'s answer as it is: {"transactions":[...],"next_cursor":...}' });
  cmd.action(async (options: SearchOptions) => {
    const query = filterQuery(options as Record<string, unknown>, [...TRANSACTION_FILTERS, ...TIME_FILTERS]);
    if (options.limit !== undefined) query.set('limit', options.limit);
    if (options.cursor !== undefined) query.set('cursor', options.cursor);
    const page = await clientFor(options).getJson<{ transactions: Row[]; next_cursor: string | null }>('/audit/transactions', query);
    if (options.json) return printJson(page);
    if (page.transactions.length === 0) {
      await out('No transactions match.\n');
      return;
    }
    await (options.full ? printFull(page.transactions) : printTable(page.transactions, TRANSACTION_COLUMNS));
    if (page.next_cursor !== null) note(`More rows: the same command with --cursor ${page.next_cursor}`);
  });
  return cmd;
}

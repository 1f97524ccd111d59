import { Command } from 'commander';
import { addCommonOptions, clientFor, note, out, printJson, printTable, type CommonOptions } from '../common';
import { addFilterOptions, filterQuery, optionName, TIME_FILTERS } from '../filters';
import { count, readableTime } from '../table';
import { findingsLegend, printFull, TRANSACTION_COLUMNS, type Row } from './transaction-view';

/** A trace is a handful of transactions; this many means something else is going on, and export is the tool. */
const MAX_TRACE_ROWS = 10_000;
const PAGE = 1000;

interface TraceOptions extends CommonOptions {
  full?: boolean;
}

/** `audit trace <id>`: every transaction of one Ssp-TraceID (all pages), oldest first. */
export function traceCommand(): Command {
  const cmd = new Command('trace').description('every transaction of one trace ID, oldest first').argument('<trace-id>', 'the Ssp-TraceID (a GUID, any case)');
  addFilterOptions(cmd, TIME_FILTERS);
  cmd.option('--full', 'every field of each row, one per line, instead of the table');
  addCommonOptions(cmd, { json: 'one JSON document, as the search API\'s: {"transactions":[every row, newest first],"next_cursor":null}' });
  cmd.action(async (traceId: string, options: TraceOptions) => {
    const client = clientFor(options, (api) => (api === 'trace_id' ? 'the trace ID' : optionName(api)));
    const query = filterQuery(options as Record<string, unknown>, TIME_FILTERS);
    query.set('trace_id', traceId);
    query.set('limit', String(PAGE));
    const rows: Row[] = [];
    let nextCursor: string | null;
    for (;;) {
      const page = await client.getJson<{ transactions: Row[]; next_cursor: string | null }>('/audit/transactions', query);
      rows.push(...page.transactions);
      nextCursor = page.next_cursor;
      if (nextCursor === null || rows.length >= MAX_TRACE_ROWS) break;
      query.set('cursor', nextCursor);
    }
    if (nextCursor !== null)
      note(
        `Trace ${traceId} has over ${count(MAX_TRACE_ROWS)} transactions: these are the newest; narrow it with --from/--to, or export --trace-id ${traceId}`,
      );
    if (options.json) return printJson({ transactions: rows, next_cursor: nextCursor });
    if (rows.length === 0) {
      await out(`No transactions with trace ID ${traceId}.\n`);
      return;
    }
    const oldestFirst = [...rows].reverse();
    const first = readableTime(oldestFirst[0].received_at);
    const last = readableTime(oldestFirst[oldestFirst.length - 1].received_at);
    await out(`Trace ${traceId}: ${rows.length} transaction${rows.length === 1 ? '' : 's'}, ${first === last ? first : `${first} to ${last}`} UTC\n\n`);
    await (options.full ? printFull(oldestFirst) : printTable(oldestFirst, TRANSACTION_COLUMNS));
    const legend = findingsLegend(oldestFirst);
    if (legend !== '') await out(legend);
  });
  return cmd;
}

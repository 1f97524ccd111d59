import { Command } from 'commander';
import { usageError } from '../cli-errors';
import { addCommonOptions, clientFor, note, out, printJson, printTable, type CommonOptions } from '../common';
import { count, type Column } from '../table';

interface SqlAnswer {
  columns: Array<{ name: string; type: string }>;
  rows: unknown[][];
  rows_returned: number;
  truncated: boolean;
  elapsed_ms: number;
}

/** How much of stdin is taken as the query: a query, not a data file. */
const MAX_QUERY_BYTES = 1024 * 1024;

const NUMERIC = /^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*)\)?$/;

function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_QUERY_BYTES) throw usageError('the query on stdin is over 1 MiB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `audit sql "SELECT …"` (or the query on stdin): POST /audit/sql, read-only, with the gateway's time and row limits. */
export function sqlCommand(): Command {
  const cmd = new Command('sql')
    .description("read-only SQL over the audit database (the gateway's time and row limits apply; every query is itself audited)")
    .argument('[query]', 'the query; without it (or with -), the query is read from stdin');
  addCommonOptions(cmd, { json: 'the API\'s answer as it is: {"columns":[...],"rows":[[...]],...}' });
  cmd.action(async (arg: string | undefined, options: CommonOptions) => {
    let sql: string;
    if (arg !== undefined && arg !== '-') sql = arg;
    else if (process.stdin.isTTY) throw usageError('give the query as an argument, e.g. audit sql "SELECT count() FROM transactions", or on stdin');
    else sql = await readStdin();
    if (sql.trim() === '') throw usageError('the query is empty: give it as an argument, or on stdin');
    const answer = await clientFor(options).postJson<SqlAnswer>('/audit/sql', { sql });
    if (options.json) return printJson(answer);
    const columns: Column<unknown[]>[] = answer.columns.map((c, i) => ({
      header: c.name,
      value: (row) => cellText(row[i]),
      align: NUMERIC.test(c.type) ? 'right' : 'left',
      minWidth: 8,
    }));
    if (answer.rows.length > 0) await printTable(answer.rows, columns, { upperCaseHeaders: false });
    else await out('(no rows)\n');
    note(
      `${count(answer.rows_returned)} row${answer.rows_returned === 1 ? '' : 's'} in ${count(answer.elapsed_ms)} ms${answer.truncated ? " (truncated at the gateway's row limit, AUDIT_SQL_MAX_ROWS)" : ''}`,
    );
  });
  return cmd;
}

#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from './cli-errors';
import { accessLogCommand } from './commands/access-log';
import { directoryCommand } from './commands/directory';
import { exportCommand } from './commands/export';
import { replayCommand } from './commands/replay';
import { searchCommand } from './commands/search';
import { sqlCommand } from './commands/sql';
import { summaryCommand } from './commands/summary';
import { traceCommand } from './commands/trace';
import { verifyCommand } from './commands/verify';

/** The package's version, from the package.json above this file (src/cli in a checkout, dist/src/cli when built). */
function version(): string {
  for (let dir = __dirname, i = 0; i < 5; dir = dirname(dir), i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) return String((JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version ?? 'unknown');
  }
  return 'unknown';
}

export function buildProgram(): Command {
  const program = new Command('spine-gateway')
    .description('The Spine gateway from the command line: its audit trail (through the admin API) and its directory files (offline).')
    .version(version());
  const audit = program
    .command('audit')
    .description('search, summarise, export and verify the audit trail (the admin API: --admin-url, and an auditor token)')
    .addHelpText(
      'after',
      `
Every command but replay-dead-letters talks to the admin API: --admin-url (default
$SPINE_GATEWAY_ADMIN_URL, else http://127.0.0.1:9090) with an auditor token
($SPINE_GATEWAY_TOKEN, --token-file or --token). Tables for people; --json for scripts.

Exit status: 0 done, 1 verify found a break, 2 bad usage, 3 the gateway could not be
reached or refused the token, 4 the gateway answered with a failure (e.g. its audit store
is down) or the output could not be written.

Examples:
  spine-gateway audit search --consumer-asid 200000000359 --from 24h
  spine-gateway audit trace 629ea9ba-a077-4d99-b289-7a9b19fd4e03
  spine-gateway audit summary --group-by consumer_ods --provider-asid 918999198993 --from 7d
  spine-gateway audit export --from 2026-12-01 --to 2026-12-02 --output case-42.csv
  spine-gateway audit verify --from 24h`,
    );
  for (const cmd of [searchCommand(), traceCommand(), summaryCommand(), exportCommand(), verifyCommand(), accessLogCommand(), sqlCommand(), replayCommand()]) {
    audit.addCommand(cmd);
  }
  program.addCommand(directoryCommand());
  // Bad usage is exit status 2 (commander's own is 1, which here means a broken trail): errors are thrown, not exited on.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) {
    c.exitOverride()
      .showHelpAfterError('(add --help for usage)')
      .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'spine-gateway: ')) });
  }
  return program;
}

/** Runs one command line (argv as process.argv: node, script, args...); the exit status is left in process.exitCode. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end with 0; commander has printed its message already.
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    } else if (err instanceof CliError) {
      process.stderr.write(`spine-gateway: ${err.message}\n${err.details.map((l) => `  ${l}\n`).join('')}`);
      process.exitCode = err.exitStatus;
    } else {
      process.stderr.write(`spine-gateway: ${(err as Error).message ?? String(err)}\n`);
      process.exitCode = EXIT.FAILED;
    }
  }
}

if (require.main === module) {
  // A reader that stops early (head, less) closes the pipe: that ends the command, quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.OK);
    throw err;
  });
  void main(process.argv);
}

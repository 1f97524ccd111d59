import { Option, type Command } from 'commander';
import { AdminClient } from './admin-client';
import { resolveTarget, type TargetOptions } from './admin-target';
import { optionName } from './filters';
import { outputWidth, renderTable, type Column } from './table';

/** Options every admin-API command takes. */
export interface CommonOptions extends TargetOptions {
  json?: boolean;
  progress?: boolean;
}

export function addCommonOptions(cmd: Command, what: { json: string; progress?: boolean }): Command {
  cmd
    .option('--admin-url <url>', "the gateway's admin API (default: $SPINE_GATEWAY_ADMIN_URL, else http://127.0.0.1:9090)")
    .option('--token-file <file>', 'read the auditor token from this file')
    .addOption(
      // No default shown from the environment: help must never print a token.
      new Option(
        '--token <token>',
        'the auditor token (default: $SPINE_GATEWAY_TOKEN; a command line is visible to other users, prefer the variable or --token-file)',
      ),
    )
    .option('--json', what.json);
  if (what.progress) {
    cmd.option('--progress', 'show the progress line on stderr even when it is not a terminal').option('--no-progress', 'never show the progress line');
  }
  return cmd;
}

/** `names`: how the API's parameter names are shown in its 400s (default: as the options, --consumer-asid). */
export function clientFor(options: CommonOptions, names: (api: string) => string = optionName): AdminClient {
  return new AdminClient(resolveTarget(options), names);
}

/** Writes to stdout; resolves once the stream has taken it (a large table to a slow pipe). */
export function out(text: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(text)) resolve();
    else process.stdout.once('drain', resolve);
  });
}

/** A remark for people, on stderr: what --json output leaves out (a next page, truncation). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** A table on stdout, fitted to the terminal, with a remark on stderr when columns had to be hidden. */
export async function printTable<R>(rows: readonly R[], columns: readonly Column<R>[], options: { upperCaseHeaders?: boolean } = {}): Promise<void> {
  const { text, hidden } = renderTable(rows, columns, outputWidth(), options);
  await out(text);
  if (hidden.length > 0) note(`(hidden to fit the terminal: ${hidden.join(', ')}; --json has every field)`);
}

/** The API's answer as one JSON document on stdout. */
export function printJson(value: unknown): Promise<void> {
  return out(`${JSON.stringify(value)}\n`);
}

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { checkDirectory, importSds, loadInteractionCatalogue, type SdsSource } from '../../directory';
import { EXIT, usageError } from '../cli-errors';
import { out } from '../common';

/**
 * `spine-gateway directory import|check`: work on directory files, offline. Nothing here
 * talks to the gateway; both use the gateway's own loader, so "check passes" means "the
 * gateway loads it". Problems go to stderr, one line each (`error: ` or `warning: `, then
 * file, place, why); exit status 0 done, 1 problems found, 2 bad usage.
 */

const DEFAULT_INTERACTIONS = join('config', 'gpconnect-interactions.json');

/** INTERACTIONS_FILE as the gateway reads it: the variable, else the catalogue shipped in this package. */
function interactionsFile(given: string | undefined): string {
  if (given !== undefined) return given;
  if (process.env.INTERACTIONS_FILE) return process.env.INTERACTIONS_FILE;
  for (let dir = __dirname, i = 0; i < 6; dir = dirname(dir), i++) {
    const file = join(dir, DEFAULT_INTERACTIONS);
    if (existsSync(join(dir, 'package.json')) && existsSync(file)) return file;
  }
  return DEFAULT_INTERACTIONS;
}

function knownInteractions(given: string | undefined): ReadonlySet<string> {
  try {
    return loadInteractionCatalogue(interactionsFile(given));
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

function report(errors: readonly string[], warnings: readonly string[]): void {
  const lines = [...errors.map((e) => `error: ${e}`), ...warnings.map((w) => `warning: ${w}`)];
  if (lines.length > 0) process.stderr.write(`${lines.join('\n')}\n`);
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

const collect = (value: string, previous: string[]) => [...previous, value];

interface ImportOptions {
  sdsDevices: string[];
  sdsEndpoints: string[];
  agreements?: string;
  environment?: 'test' | 'live';
  certificateFqdns: boolean;
  interactionsFile?: string;
}

function importCommand(): Command {
  return new Command('import')
    .description(
      'SDS FHIR API search results (and an agreements register) to a directory file on stdout; problems on stderr, nothing written when there is any error',
    )
    .option('--sds-devices <file>', 'an SDS /Device search result (AS records: ASID, party key, interactions, owner ODS); repeat for several', collect, [])
    .option(
      '--sds-endpoints <file>',
      'an SDS /Endpoint search result (MHS records: service root, interaction, party key, FQDN); repeat for several',
      collect,
      [],
    )
    .option(
      '--agreements <file>',
      'CSV with the header agreement,consumer_ods,provider_ods (* for every organisation); without it the directory has no agreements key',
    )
    .addOption(
      new Option('--environment <environment>', "stamp every consumer test or live (default: none, the gateway's ENVIRONMENT applies)").choices([
        'test',
        'live',
      ]),
    )
    .option('--no-certificate-fqdns', "leave out certificate_fqdns (the MHS FQDNs a consumer's client certificate must show): for a gateway without mutual TLS")
    .option('--interactions-file <file>', 'the known interaction IDs (default: $INTERACTIONS_FILE, else the catalogue shipped with the gateway)')
    .addHelpText(
      'after',
      `
Providers are AS records with MHS records sharing their party key (an interaction on both
is provided, at the MHS record's address); consumers are AS records whose interactions are
on the AS record only. README, "Directory import", has the rules.

Exit status: 0 written (warnings may be on stderr), 1 problems found (nothing on stdout), 2 bad usage.

Example:
  spine-gateway directory import --sds-devices devices.json --sds-endpoints endpoints.json \\
    --agreements ndsa.csv > config/directory.yaml.new && spine-gateway directory check config/directory.yaml.new`,
    )
    .action(async (options: ImportOptions) => {
      if (options.sdsDevices.length === 0 || options.sdsEndpoints.length === 0) {
        throw usageError('directory import needs --sds-devices FILE and --sds-endpoints FILE');
      }
      const known = knownInteractions(options.interactionsFile);
      const unreadable: string[] = [];
      const read = (name: string): SdsSource | null => {
        try {
          return { name, text: readFileSync(name, 'utf8') };
        } catch (err) {
          unreadable.push(`${name}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          return null;
        }
      };
      const devices = options.sdsDevices.map(read).filter((s) => s !== null);
      const endpoints = options.sdsEndpoints.map(read).filter((s) => s !== null);
      const agreements = options.agreements === undefined ? undefined : read(options.agreements);
      const result = importSds({
        devices,
        endpoints,
        ...(agreements !== undefined ? { agreements } : {}),
        knownInteractions: known,
        ...(options.environment ? { environment: options.environment } : {}),
        certificateFqdns: options.certificateFqdns,
      });
      const errors = [...unreadable, ...result.errors];
      report(errors, result.warnings);
      if (errors.length > 0 || result.yaml === null) {
        process.stderr.write(`spine-gateway: ${plural(errors.length, 'error')}, ${plural(result.warnings.length, 'warning')}: no directory written\n`);
        process.exitCode = EXIT.PROBLEMS;
        return;
      }
      await out(result.yaml);
      const d = result.directory!;
      process.stderr.write(
        `spine-gateway: directory written: ${plural(d.consumers.length, 'consumer')}, ${plural(d.providers.length, 'provider')}, ${plural(
          d.agreements?.length ?? 0,
          'agreement entry',
        )}; ${plural(result.warnings.length, 'warning')}\n`,
      );
    });
}

function checkCommand(): Command {
  return new Command('check')
    .description('validate a directory file as the gateway loads it (schema, duplicates, known interactions, canonical endpoints), without starting anything')
    .argument('<file>', 'the directory file (DIRECTORY_FILE)')
    .option('--strict', 'warnings count as problems too (exit status 1)')
    .option('--interactions-file <file>', 'the known interaction IDs (default: $INTERACTIONS_FILE, else the catalogue shipped with the gateway)')
    .addHelpText('after', '\nExit status: 0 the gateway would load it, 1 it would not (or, with --strict, warnings), 2 bad usage.')
    .action(async (file: string, options: { strict?: boolean; interactionsFile?: string }) => {
      const checked = checkDirectory(file, knownInteractions(options.interactionsFile));
      const warnings = [...checked.warnings];
      if (checked.index !== null && checked.index.agreements === null) {
        warnings.push(`directory ${file}: no agreements key: the data-sharing agreement (FoT) check is off`);
      }
      report(checked.problems, warnings);
      if (checked.index === null) {
        process.stderr.write(`spine-gateway: ${plural(checked.problems.length, 'problem')}: the gateway would not load ${file}\n`);
        process.exitCode = EXIT.PROBLEMS;
        return;
      }
      const { index } = checked;
      await out(
        `${file}: the gateway loads it: ${plural(index.consumers.size, 'consumer')}, ${plural(index.providers.size, 'provider')}, ${plural(index.endpointCount, 'endpoint')}; ${plural(warnings.length, 'warning')}\n`,
      );
      if (options.strict && warnings.length > 0) process.exitCode = EXIT.PROBLEMS;
    });
}

export function directoryCommand(): Command {
  return new Command('directory')
    .description('import a directory from SDS, and check a directory file, offline')
    .addCommand(importCommand())
    .addCommand(checkCommand());
}

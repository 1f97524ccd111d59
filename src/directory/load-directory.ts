import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { GatewayError } from '../errors';
import { directorySchema, type DirectoryFile } from './schema';
import { DirectoryIndex, directoryConflicts } from './directory-index';
import { compileInteractionCatalogue, type InteractionCatalogue } from './interaction-catalogue';

/** The directory file could not be used; the message names the file, the place and why. */
export class DirectoryError extends GatewayError {
  declare readonly code: 'GW_ERR_DIRECTORY';
  /** Every problem, one line each; the message names the first and counts the rest. */
  readonly problems: readonly string[];
  constructor(message: string, options?: { cause?: unknown; problems?: readonly string[] }) {
    super('GW_ERR_DIRECTORY', message, options);
    this.problems = options?.problems ?? [message];
  }
}

export interface LoadedDirectory {
  index: DirectoryIndex;
  /** Interaction IDs that are not GP Connect's: allowed, but probably a typo. */
  warnings: string[];
}

/**
 * Reads, validates and compiles INTERACTIONS_FILE (config/gpconnect-interactions.json) once
 * at start-up: the known interaction IDs and each one's method and path form. Throws
 * DirectoryError naming every problem (entry index and id), so a bad regex stops start-up.
 */
export function loadInteractionCatalogue(file: string): InteractionCatalogue {
  let list: unknown;
  try {
    list = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DirectoryError(`INTERACTIONS_FILE ${file}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const compiled = compileInteractionCatalogue(list);
  if (!Array.isArray(compiled)) return compiled;
  const count = compiled.length === 1 ? 'a problem' : `${compiled.length} problems`;
  throw new DirectoryError(`INTERACTIONS_FILE ${file}: ${count}:\n  ${compiled.join('\n  ')}`);
}

/** How many problems the start-up line spells out before it points to `directory check`. */
const PROBLEMS_IN_ONE_LINE = 1;

/**
 * Parses, validates and compiles the whole file; throws DirectoryError, never half-loads.
 * The error's message stays one line (the first problem, and how many more there are);
 * its `problems` lists every one, as `spine-gateway directory check` prints them.
 */
export function loadDirectory(file: string, knownInteractions: ReadonlySet<string>): LoadedDirectory {
  const checked = checkDirectory(file, knownInteractions);
  if (checked.index === null) {
    const { problems } = checked;
    const more = problems.length - PROBLEMS_IN_ONE_LINE;
    const suffix = more > 0 ? ` (and ${more} more problem${more === 1 ? '' : 's'}: spine-gateway directory check ${file} lists them all)` : '';
    throw new DirectoryError(`${problems.slice(0, PROBLEMS_IN_ONE_LINE).join('; ')}${suffix}`, { cause: checked.cause, problems });
  }
  return { index: checked.index, warnings: checked.warnings };
}

/** A directory checked as the gateway loads it: the index when it loads, else every problem. */
export interface DirectoryCheck {
  /** Null when there are problems: the gateway would not load the file. */
  index: DirectoryIndex | null;
  /** Each one line: `directory FILE: place: why`, in file order. */
  problems: string[];
  /** Loadable, but probably a mistake (interaction IDs that are not GP Connect's). */
  warnings: string[];
  /** The underlying error when the file could not be read or parsed. */
  cause?: unknown;
}

/** Reads and checks `file` (what loadDirectory does, without throwing). */
export function checkDirectory(file: string, knownInteractions: ReadonlySet<string>): DirectoryCheck {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0];
    return { index: null, problems: [`directory ${file}: cannot read: ${why}`], warnings: [], cause: err };
  }
  return checkDirectoryText(text, file, knownInteractions);
}

/** Checks a directory given as YAML text; `source` names it in every line (a file name, or e.g. "(stdin)"). */
export function checkDirectoryText(text: string, source: string, knownInteractions: ReadonlySet<string>): DirectoryCheck {
  const prefix = `directory ${source}: `;
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const e = err as Error & { linePos?: Array<{ line: number; col: number }> };
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : '';
    return { index: null, problems: [`${prefix}cannot read: ${where}${e.message.split('\n')[0]}`], warnings: [], cause: err };
  }
  const problems: string[] = [];
  const parsed = directorySchema.safeParse(doc);
  let data: DirectoryFile;
  let places: { consumers: number[]; providers: number[] } | undefined;
  if (parsed.success) {
    data = parsed.data;
  } else {
    for (const issue of parsed.error.issues) {
      const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
      problems.push(`${prefix}${where}: ${issue.message}`);
    }
    // The entries that are valid on their own are still checked against each other, so
    // that a duplicate is reported in the same run as a typo elsewhere.
    ({ data, places } = validEntries(doc));
  }
  for (const conflict of directoryConflicts(data, places)) problems.push(prefix + conflict);
  const warnings = unknownInteractionWarnings(data, prefix, knownInteractions);
  if (problems.length > 0) return { index: null, problems, warnings };
  try {
    return { index: new DirectoryIndex(data), problems, warnings };
  } catch (err) {
    // The index refuses only what directoryConflicts lists: not reached, kept so a throw never escapes.
    return { index: null, problems: [prefix + (err as Error).message], warnings, cause: err };
  }
}

/** The consumer and provider entries of a document that fails the schema, that pass it one by one. */
function validEntries(doc: unknown): { data: DirectoryFile; places: { consumers: number[]; providers: number[] } } {
  const data: DirectoryFile = { consumers: [], providers: [] };
  const places = { consumers: [] as number[], providers: [] as number[] };
  const root = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  const entries = (key: 'consumers' | 'providers') => (Array.isArray(root[key]) ? (root[key] as unknown[]) : []);
  entries('consumers').forEach((entry, i) => {
    const one = directorySchema.shape.consumers.element.safeParse(entry);
    if (one.success) {
      data.consumers.push(one.data);
      places.consumers.push(i);
    }
  });
  entries('providers').forEach((entry, i) => {
    const one = directorySchema.shape.providers.element.safeParse(entry);
    if (one.success) {
      data.providers.push(one.data);
      places.providers.push(i);
    }
  });
  return { data, places };
}

/** One warning per interaction ID that INTERACTIONS_FILE does not know, at its first use. */
function unknownInteractionWarnings(data: DirectoryFile, prefix: string, knownInteractions: ReadonlySet<string>): string[] {
  const warnings: string[] = [];
  const seen = new Set<string>();
  const check = (id: string, where: string) => {
    if (!knownInteractions.has(id) && !seen.has(id)) {
      seen.add(id);
      warnings.push(`${prefix}${where}: ${id} is not a known GP Connect interaction ID`);
    }
  };
  for (const c of data.consumers) for (const id of c.interactions) check(id, `consumer ${c.asid}`);
  for (const p of data.providers) {
    for (const e of p.endpoints) for (const id of e.interactions) check(id, `provider ${p.asid}`);
  }
  return warnings;
}

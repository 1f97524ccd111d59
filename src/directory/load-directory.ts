import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { GatewayError } from '../errors';
import { directorySchema } from './schema';
import { DirectoryIndex } from './directory-index';
import { compileInteractionCatalogue, type InteractionCatalogue } from './interaction-catalogue';

/** The directory file could not be used; the message names the file, the place and why. */
export class DirectoryError extends GatewayError {
  declare readonly code: 'GW_ERR_DIRECTORY';
  constructor(message: string, options?: { cause?: unknown }) {
    super('GW_ERR_DIRECTORY', message, options);
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

/** Parses, validates and compiles the whole file; throws DirectoryError, never half-loads. */
export function loadDirectory(file: string, knownInteractions: ReadonlySet<string>): LoadedDirectory {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0];
    throw new DirectoryError(`directory ${file}: cannot read: ${why}`, { cause: err });
  }
  const parsed = directorySchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    throw new DirectoryError(`directory ${file}: ${where}: ${issue.message}`);
  }
  let index: DirectoryIndex;
  try {
    index = new DirectoryIndex(parsed.data);
  } catch (err) {
    throw new DirectoryError(`directory ${file}: ${(err as Error).message}`, { cause: err });
  }
  const warnings: string[] = [];
  const seen = new Set<string>();
  const check = (id: string, where: string) => {
    if (!knownInteractions.has(id) && !seen.has(id)) {
      seen.add(id);
      warnings.push(`directory ${file}: ${where}: ${id} is not a known GP Connect interaction ID`);
    }
  };
  for (const c of parsed.data.consumers) for (const id of c.interactions) check(id, `consumer ${c.asid}`);
  for (const p of parsed.data.providers) {
    for (const e of p.endpoints) for (const id of e.interactions) check(id, `provider ${p.asid}`);
  }
  return { index, warnings };
}

import { z } from 'zod';
import { INTERACTION_PATTERN } from '../validate';

/**
 * One INTERACTIONS_FILE entry, compiled once at start-up: what a request of this
 * interaction looks like below its endpoint (README "Interaction check").
 */
export interface CompiledInteraction {
  readonly id: string;
  readonly method: string;
  /** The path template as written (`/Patient?identifier={system}|{value}`): the form refusals and diagnose name. */
  readonly path: string;
  /** The file's pathRegex, matched against the whole path below the endpoint (without the query), as if anchored. */
  readonly pathRegex: RegExp;
  /**
   * Query parameter names the template fixes (`/Patient?identifier={system}|{value}` → `identifier`).
   * Empty when the template has no query, or only placeholders: then the query is not checked.
   */
  readonly queryNames: readonly string[];
  /** As written, e.g. "patient/*.read (plus conf/N or conf/R)". */
  readonly requestedScope: string;
  readonly operation: string;
  readonly capability: string | null;
}

/**
 * The catalogue: the set of interaction IDs INTERACTIONS_FILE lists (what the directory's
 * "not a known GP Connect interaction" warning asks), and each one's compiled entry.
 */
export interface InteractionCatalogue extends ReadonlySet<string> {
  /** The compiled entry; undefined for an ID the file does not list. */
  get(id: string): CompiledInteraction | undefined;
}

class CompiledCatalogue extends Set<string> implements InteractionCatalogue {
  private readonly entries_ = new Map<string, CompiledInteraction>();

  constructor(entries: readonly CompiledInteraction[]) {
    super();
    for (const e of entries) {
      this.entries_.set(e.id, e);
      this.add(e.id);
    }
  }

  get(id: string): CompiledInteraction | undefined {
    return this.entries_.get(id);
  }
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** A missing field says so; a present one of the wrong type says what it must be. */
const missingOr = (what: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is missing' : what) });
const text = () => z.string(missingOr('must be a string'));

const entrySchema = z
  .object(
    {
      id: text().regex(INTERACTION_PATTERN, 'must be an interaction URN (urn:nhs:names:services:...)'),
      method: z.enum(METHODS, missingOr(`must be one of ${METHODS.join(', ')}`)),
      path: text().regex(/^\/[\x21-\x7e]*$/, 'must be a path template below the endpoint, starting with "/"'),
      pathRegex: text().min(1, 'must not be empty'),
      requestedScope: text().min(1, 'must not be empty'),
      operation: text().min(1, 'must not be empty'),
      capability: z.string().optional(),
      spec: z.string().optional(),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object { id, method, path, pathRegex, requestedScope, operation }' : undefined) },
  )
  .strict();

/**
 * The parameter names a path template's query fixes. RFC 6570 continuations (`{&...}`)
 * and placeholders standing for whole parameters (`?{params}`) fix no name. Values are
 * never looked at, here or per request.
 */
export function queryNamesOf(template: string): string[] {
  const q = template.indexOf('?');
  if (q < 0) return [];
  const names = new Set<string>();
  for (const part of template
    .slice(q + 1)
    .replace(/\{[&?][^}]*\}/g, '')
    .split('&')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    if (name !== '' && !/[{}]/.test(name)) names.add(name);
  }
  return [...names];
}

/** Where an entry is, for messages: its index, and its id when it has a usable one. */
function whereOf(index: number, entry: unknown): string {
  const id = typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id !== '' ? `[${index}] ${id}` : `[${index}]`;
}

/**
 * Validates and compiles the parsed INTERACTIONS_FILE. Returns the catalogue, or every
 * problem found (one line each, naming the entry's index and id), never a half-valid one.
 */
export function compileInteractionCatalogue(list: unknown): InteractionCatalogue | string[] {
  if (!Array.isArray(list)) return ['expected a JSON array of interactions ({ id, method, path, pathRegex, requestedScope, operation })'];
  const problems: string[] = [];
  const compiled: CompiledInteraction[] = [];
  const firstIndex = new Map<string, number>();
  list.forEach((raw: unknown, index) => {
    const where = whereOf(index, raw);
    const parsed = entrySchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push(`${where}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
      }
      return;
    }
    const e = parsed.data;
    const earlier = firstIndex.get(e.id);
    if (earlier !== undefined) {
      problems.push(`${where}: id is listed twice (first at [${earlier}])`);
      return;
    }
    firstIndex.set(e.id, index);
    let pathRegex: RegExp;
    try {
      // Wrapped so that the whole path must match whatever the file wrote: an unanchored
      // `/Patient` or a top-level `^a|b$` would otherwise fit paths it never meant.
      pathRegex = new RegExp(`^(?:${e.pathRegex})$`);
    } catch (err) {
      problems.push(`${where}: pathRegex: not a valid regular expression (${(err as Error).message})`);
      return;
    }
    compiled.push({
      id: e.id,
      method: e.method,
      path: e.path,
      pathRegex,
      queryNames: Object.freeze(queryNamesOf(e.path)),
      requestedScope: e.requestedScope,
      operation: e.operation,
      capability: e.capability ?? null,
    });
  });
  return problems.length > 0 ? problems : new CompiledCatalogue(compiled);
}

import type { Endpoint, InteractionCatalogue } from '../directory';
import { NO_FINDINGS } from '../transaction';
import type { InteractionFinding } from './finding-codes';

/** What routing found for a request: its endpoint, and the path and query below the endpoint's origin (a Route fits). */
export interface RoutedTarget {
  readonly endpoint: Endpoint;
  readonly upstreamPath: string;
}

const METHOD = 1;
const PATH = 2;
const QUERY = 4;

/** Every combination of findings, built once: a request allocates no list (index: METHOD | PATH | QUERY bits). */
const COMBINATIONS: ReadonlyArray<readonly InteractionFinding[]> = Array.from({ length: 8 }, (_, bits) =>
  bits === 0
    ? (NO_FINDINGS as readonly InteractionFinding[])
    : Object.freeze([
        ...(bits & METHOD ? (['INTERACTION_METHOD'] as const) : []),
        ...(bits & PATH ? (['INTERACTION_PATH'] as const) : []),
        ...(bits & QUERY ? (['INTERACTION_QUERY'] as const) : []),
      ]),
);
const NOT_IN_CATALOGUE: readonly InteractionFinding[] = Object.freeze(['INTERACTION_NOT_IN_CATALOGUE']);

/**
 * Is parameter `name` in the query `s[from + 1 ..]` (`s[from]` is the "?")? Compares names
 * as sent, byte for byte (FHIR names are case-sensitive; an escaped name does not count);
 * values are skipped unread. No allocation.
 */
function hasParameter(s: string, from: number, name: string): boolean {
  let i = from + 1;
  while (i <= s.length) {
    let end = s.indexOf('&', i);
    if (end < 0) end = s.length;
    if (end - i >= name.length && s.startsWith(name, i)) {
      const after = i + name.length;
      if (after === end || s.charCodeAt(after) === 0x3d /* = */) return true;
    }
    i = end + 1;
  }
  return false;
}

/**
 * The interaction check (README "Interaction check"): does the method, and the path under
 * the matched endpoint, fit the interaction's entry in INTERACTIONS_FILE? The SSP ties an
 * interaction to a service root only; this makes the audit's interaction ID say what the
 * request did. Everything is compiled at start-up: a request costs one map look-up, one
 * comparison, one anchored regex test and, for interactions whose template has a query,
 * a scan of the query's parameter names.
 */
export class InteractionCheck {
  /** What each interaction expects, built once: exactly `{ method, path }`, safe to serialise as it is. */
  private readonly expectedForms = new Map<string, Readonly<{ method: string; path: string }>>();

  constructor(private readonly catalogue: InteractionCatalogue) {
    for (const id of catalogue) {
      const entry = catalogue.get(id)!;
      this.expectedForms.set(id, Object.freeze({ method: entry.method, path: entry.path }));
    }
  }

  /**
   * Findings for a request of `interactionId` with `method`, routed to `route` (the path
   * below the endpoint is `upstreamPath` without the endpoint's own path). NO_FINDINGS when
   * it fits; INTERACTION_NOT_IN_CATALOGUE alone when the file does not list the interaction
   * (its form is unknown: recorded, not refused).
   */
  findings(interactionId: string, method: string, route: RoutedTarget): readonly InteractionFinding[] {
    const entry = this.catalogue.get(interactionId);
    if (entry === undefined) return NOT_IN_CATALOGUE;
    const { upstreamPath, endpoint } = route;
    // upstreamPath starts with the endpoint's own path (url = origin + path, canonical, no trailing "/").
    const start = endpoint.url.length - endpoint.origin.length;
    const q = upstreamPath.indexOf('?', start);
    const path = q < 0 ? (start === 0 ? upstreamPath : upstreamPath.slice(start)) : upstreamPath.slice(start, q);
    let bits = 0;
    // HEAD is GET without the body (RFC 9110 9.3.2): it reads what the GET interaction reads,
    // and the record keeps the method HEAD, so the audit still says what happened.
    if (method !== entry.method && !(method === 'HEAD' && entry.method === 'GET')) bits |= METHOD;
    if (!entry.pathRegex.test(path)) bits |= PATH;
    const names = entry.queryNames;
    for (let i = 0; i < names.length; i++) {
      if (q < 0 || !hasParameter(upstreamPath, q, names[i])) {
        bits |= QUERY;
        break;
      }
    }
    return COMBINATIONS[bits];
  }

  /** The interaction's requestedScope in INTERACTIONS_FILE, as written (e.g. "patient/*.read (plus conf/N or conf/R)"); null when unknown. */
  requiredScope(interactionId: string): string | null {
    return this.catalogue.get(interactionId)?.requestedScope ?? null;
  }

  /** What the interaction expects, for refusals and diagnose: its method and path form (the template), or null when unknown. */
  expected(interactionId: string): { method: string; path: string } | null {
    return this.expectedForms.get(interactionId) ?? null;
  }
}

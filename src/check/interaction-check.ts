import { NO_FINDINGS } from '../transaction';
import type { InteractionFinding } from './finding-codes';

/**
 * The interaction check (README "Interaction check"): does the method, and the path under
 * the matched endpoint, fit the interaction's entry in INTERACTIONS_FILE?
 * SKELETON: the lead's shared vocabulary; the interaction-check work fills it in.
 */
export class InteractionCheck {
  /**
   * Findings for a request of `interactionId` with `method` and `upstreamPath` (the path and
   * query below the endpoint's origin, as routed). NO_FINDINGS when it fits.
   */
  findings(interactionId: string, method: string, upstreamPath: string): readonly InteractionFinding[] {
    void interactionId;
    void method;
    void upstreamPath;
    return NO_FINDINGS as readonly InteractionFinding[];
  }

  /** The interaction's requestedScope in INTERACTIONS_FILE, as written (e.g. "patient/*.read (plus conf/N or conf/R)"); null when unknown. */
  requiredScope(interactionId: string): string | null {
    void interactionId;
    return null;
  }

  /** What the interaction expects, for refusals and diagnose: its method and path form (the template), or null when unknown. */
  expected(interactionId: string): { method: string; path: string } | null {
    void interactionId;
    return null;
  }
}

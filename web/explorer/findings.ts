/**
 * The checks' finding codes and what each one expected, in words: src/check's own lists
 * (finding-codes.ts holds plain constants, bundled in), so the page never has a copy to
 * drift. Kept free of DOM code, like outcomes.ts.
 */
import { INTERACTION_FINDINGS, JWT_RULES } from '../../src/check/finding-codes';

export const JWT_FINDING_WORDS: Readonly<Record<string, string>> = JWT_RULES;
export const INTERACTION_FINDING_WORDS: Readonly<Record<string, string>> = INTERACTION_FINDINGS;

/** What a code expected ("expected exp not in the past"), or '' for a code this page does not know. */
export function findingWords(code: string): string {
  if (Object.hasOwn(JWT_FINDING_WORDS, code)) return JWT_FINDING_WORDS[code];
  if (Object.hasOwn(INTERACTION_FINDING_WORDS, code)) return INTERACTION_FINDING_WORDS[code];
  return '';
}

/** A record's finding codes: the list the API answers, anything else none. */
export function codesOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map((v) => String(v)) : [];
}

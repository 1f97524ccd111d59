import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What the demo needs from INTERACTIONS_FILE (config/gpconnect-interactions.json): every
 * interaction with its method, path form and capability. The sample provider answers each
 * entry and the traffic generator sends each one, so a new entry without a payload or a
 * request below is an error at start, not a silent gap in the demo.
 */
export interface CatalogueEntry {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly pathRegex: string;
  readonly capability: string;
  /** What it does, in words ("Read a patient"). */
  readonly operation: string;
  readonly requestedScope: string;
}

/** The checkout the demo runs from: the repository root above dist/src/demo (built) or src/demo (tests from source). */
export const REPO_ROOT = existsSync(join(__dirname, '..', '..', 'package.json')) ? join(__dirname, '..', '..') : join(__dirname, '..', '..', '..');
/** The public example payloads the demo serves and sends (test/fixtures/gpconnect/README.md has their sources). */
export const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures', 'gpconnect');
export const INTERACTIONS_FILE = join(REPO_ROOT, 'config', 'gpconnect-interactions.json');

/**
 * Where each capability lives under a practice's `/{ODS}/STU3/1/gpconnect/` (ssp-reference
 * section 1: the provider routing segment). Foundations and Appointment Management share
 * one FHIR server, as in the spec's CapabilityStatement.
 */
export const CAPABILITY_ROOTS: Readonly<Record<string, string>> = {
  foundations: 'fhir',
  'appointment-management': 'fhir',
  'access-record-structured': 'structured/fhir',
  'access-document': 'documents/fhir',
  'access-record-html': 'html/fhir',
};

export function loadCatalogue(file = INTERACTIONS_FILE): CatalogueEntry[] {
  const entries = JSON.parse(readFileSync(file, 'utf8')) as CatalogueEntry[];
  for (const e of entries) {
    if (CAPABILITY_ROOTS[e.capability] === undefined) throw new Error(`${file}: ${e.id}: capability ${e.capability} has no place in the demo provider`);
  }
  return entries;
}

/** The scope a token asks for, from the catalogue's `requestedScope` ("patient/*.read (plus conf/N or conf/R)" → "patient/*.read"). */
export function scopeOf(entry: CatalogueEntry): string {
  return entry.requestedScope.split(' ')[0];
}

/** A service root of practice `ods` on the sample provider at `origin` (http://127.0.0.1:port). */
export function serviceRoot(origin: string, ods: string, capability: string): string {
  return `${origin}/${ods}/STU3/1/gpconnect/${CAPABILITY_ROOTS[capability]}`;
}

/** The id without its capability's URN prefix ("urn:nhs:names:services:gpconnect:structured:fhir:rest:read:metadata-1" → "rest:read:metadata-1"). */
export function shortId(entry: CatalogueEntry): string {
  return entry.id.replace(/^urn:nhs:names:services:gpconnect:(?:[a-z]+:)?fhir:/, '');
}

export function readFixture(file: string): Buffer {
  return readFileSync(join(FIXTURES_DIR, file));
}

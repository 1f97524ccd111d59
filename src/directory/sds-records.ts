import { ASID_PATTERN, INTERACTION_PATTERN, ODS_PATTERN } from '../validate';
import { directorySchema } from './schema';

/**
 * Reading SDS FHIR API search results (ssp-reference.md section 6): `/Device` gives AS
 * records (accredited systems), `/Endpoint` gives MHS records (message handling
 * services, whose `address` is a provider's service root). Each entry becomes a record
 * or a list of problems, each naming the file, the entry (index and fullUrl) and the field.
 */

export const SYSTEM = {
  asid: 'https://fhir.nhs.uk/Id/nhsSpineASID',
  partyKey: 'https://fhir.nhs.uk/Id/nhsMhsPartyKey',
  ods: 'https://fhir.nhs.uk/Id/ods-organization-code',
  interaction: 'https://fhir.nhs.uk/Id/nhsServiceInteractionId',
  fqdn: 'https://fhir.nhs.uk/Id/nhsMhsFQDN',
  cpaId: 'https://fhir.nhs.uk/Id/nhsMhsCPAId',
  mhsId: 'https://fhir.nhs.uk/Id/nhsMHSId',
} as const;

export const EXTENSION = {
  interaction: 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId',
  manufacturer: 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-ManufacturingOrganisation',
} as const;

/** A file's name (as given on the command line, for messages) and its text. */
export interface SdsSource {
  readonly name: string;
  readonly text: string;
}

/** Where a record came from: `devices.json: entry 3 (https://.../Device/...)`. */
export interface Place {
  readonly file: string;
  readonly entry: number;
  readonly fullUrl: string | null;
}

export function placeText(p: Place): string {
  return `${p.file}: entry ${p.entry}${p.fullUrl ? ` (${printable(p.fullUrl)})` : ''}`;
}

/** An interaction ID with where it was written (for the unknown-interaction warning). */
export interface InteractionUse {
  readonly id: string;
  readonly field: string;
}

/** An AS record: an accredited system (consumer, provider, or both). */
export interface AsRecord {
  readonly place: Place;
  readonly asid: string;
  readonly partyKey: string;
  readonly ods: string;
  readonly name: string | null;
  readonly manufacturer: string | null;
  readonly interactions: readonly InteractionUse[];
}

/** An MHS record: where a system receives one interaction. */
export interface MhsRecord {
  readonly place: Place;
  readonly partyKey: string;
  readonly ods: string;
  /** The service root, without a trailing slash. */
  readonly address: string;
  readonly fqdn: string | null;
  readonly cpaId: string | null;
  readonly interactions: readonly InteractionUse[];
}

export interface Findings {
  errors: string[];
  warnings: string[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Text from a file, made safe for one line of a terminal: control characters (a newline
 * would split a problem into two lines, an escape sequence would repaint the screen) become
 * `?`, and long values are cut.
 */
export function printable(value: unknown, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const text = String(value).replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/** The entries of a search-result Bundle, or null with the one problem that makes the file unusable. */
export function bundleEntries(source: SdsSource, expected: 'Device' | 'Endpoint', findings: Findings): unknown[] | null {
  let bundle: unknown;
  try {
    bundle = JSON.parse(source.text);
  } catch (err) {
    findings.errors.push(`${source.name}: not JSON: ${printable((err as Error).message)}`);
    return null;
  }
  if (!isObject(bundle)) {
    findings.errors.push(
      `${source.name}: expected a FHIR Bundle (an SDS /${expected} search result), found ${Array.isArray(bundle) ? 'an array' : typeof bundle}`,
    );
    return [];
  }
  if (bundle.resourceType === 'OperationOutcome') {
    findings.errors.push(`${source.name}: resourceType: an OperationOutcome (the SDS API's error answer), not a /${expected} search result`);
    return null;
  }
  if (bundle.resourceType !== 'Bundle') {
    findings.errors.push(`${source.name}: resourceType: expected Bundle (an SDS /${expected} search result), found ${printable(bundle.resourceType)}`);
    return null;
  }
  const links = Array.isArray(bundle.link) ? bundle.link : [];
  if (links.some((l) => isObject(l) && l.relation === 'next')) {
    // A half-read search result would silently drop systems: refuse it.
    findings.errors.push(`${source.name}: link: the search result has a next page; fetch every page and pass each file (the option may be repeated)`);
  }
  if (bundle.entry === undefined) {
    findings.warnings.push(`${source.name}: the search result has no entries`);
    return [];
  }
  if (!Array.isArray(bundle.entry)) {
    findings.errors.push(`${source.name}: entry: expected an array`);
    return null;
  }
  return bundle.entry;
}

/** The values of the identifiers with `system` (FHIR Identifier[]). */
function identifierValues(list: unknown, system: string): unknown[] {
  return Array.isArray(list) ? list.filter((i) => isObject(i) && i.system === system).map((i) => (i as Json).value) : [];
}

/** The `valueReference.identifier.value` of each extension with `url`. */
function extensionValues(list: unknown, url: string): unknown[] {
  if (!Array.isArray(list)) return [];
  return list.filter((e) => isObject(e) && e.url === url).map((e) => (((e as Json).valueReference as Json | undefined)?.identifier as Json | undefined)?.value);
}

/** Reads one entry's resource and its common fields; records its problems under `where`. */
class EntryReader {
  readonly problems: string[] = [];
  readonly resource: Json | null;
  readonly place: Place;

  constructor(source: SdsSource, entry: unknown, index: number, expected: 'Device' | 'Endpoint') {
    const fullUrl = isObject(entry) && typeof entry.fullUrl === 'string' ? entry.fullUrl : null;
    this.place = { file: source.name, entry: index, fullUrl };
    const resource = isObject(entry) ? entry.resource : undefined;
    if (!isObject(resource)) {
      this.resource = null;
      this.fail('resource', 'missing');
    } else if (resource.resourceType !== expected) {
      this.resource = null;
      this.fail('resourceType', `expected ${expected}, found ${printable(resource.resourceType)}`);
    } else {
      this.resource = resource;
    }
  }

  fail(field: string, why: string): void {
    this.problems.push(`${placeText(this.place)}: ${field}: ${why}`);
  }

  /** The one value of an identifier system; null (and a problem) when missing, repeated with different values, or not matching. */
  oneIdentifier(system: string, field: string, pattern: RegExp | null, what: string, required = true): string | null {
    const values = [...new Set(identifierValues(this.resource?.identifier, system))];
    if (values.length === 0) {
      if (required) this.fail(field, `missing (an identifier with system ${system})`);
      return null;
    }
    if (values.length > 1) {
      this.fail(field, `${values.length} different values (${values.map((v) => printable(v, 40)).join(', ')}); one expected`);
      return null;
    }
    const value = values[0];
    if (typeof value !== 'string' || (pattern !== null && !pattern.test(value))) {
      this.fail(field, value === '' ? `empty (${what} expected)` : `${printable(value)} is not ${what}`);
      return null;
    }
    return value;
  }

  /** An organisation reference's ODS code (`owner`, `managingOrganization`). */
  ods(key: string): string | null {
    const identifier = (this.resource?.[key] as Json | undefined)?.identifier;
    const value = isObject(identifier) ? identifier.value : undefined;
    if (value === undefined) {
      this.fail(`${key}.identifier.value`, 'missing (the ODS code of the organisation)');
      return null;
    }
    if (isObject(identifier) && identifier.system !== undefined && identifier.system !== SYSTEM.ods) {
      this.fail(`${key}.identifier.system`, `expected ${SYSTEM.ods}, found ${printable(identifier.system)}`);
      return null;
    }
    if (typeof value !== 'string' || !ODS_PATTERN.test(value)) {
      this.fail(`${key}.identifier.value`, `${printable(value)} is not an ODS code (letters and digits)`);
      return null;
    }
    return value;
  }

  /** The interaction IDs in the `Extension-SDS-NhsServiceInteractionId` extensions. */
  interactions(): InteractionUse[] {
    const uses: InteractionUse[] = [];
    const list = this.resource?.extension;
    if (!Array.isArray(list)) return uses;
    list.forEach((extension, i) => {
      if (!isObject(extension) || extension.url !== EXTENSION.interaction) return;
      const field = `extension[${i}] (interaction)`;
      const value = ((extension.valueReference as Json | undefined)?.identifier as Json | undefined)?.value;
      if (typeof value !== 'string' || !INTERACTION_PATTERN.test(value)) {
        this.fail(
          field,
          `${value === undefined ? 'no valueReference.identifier.value' : printable(value)} is not an interaction URN (urn:nhs:names:services:...)`,
        );
      } else {
        uses.push({ id: value, field });
      }
    });
    return uses;
  }
}

/** An AS record from a `/Device` entry, or null with its problems in `findings`. `partyKeys` collects every party key seen, valid or not. */
export function readDevice(source: SdsSource, entry: unknown, index: number, findings: Findings, partyKeys: Set<string>): AsRecord | null {
  const r = new EntryReader(source, entry, index, 'Device');
  if (r.resource === null) {
    findings.errors.push(...r.problems);
    return null;
  }
  const asid = r.oneIdentifier(SYSTEM.asid, 'identifier (nhsSpineASID)', ASID_PATTERN, 'an ASID (digits only)');
  const partyKey = r.oneIdentifier(SYSTEM.partyKey, 'identifier (nhsMhsPartyKey)', null, 'a party key');
  if (partyKey !== null) partyKeys.add(partyKey);
  const ods = r.ods('owner');
  const interactions = r.interactions();
  const manufacturer = extensionValues(r.resource.extension, EXTENSION.manufacturer).find((v): v is string => typeof v === 'string');
  const deviceName = Array.isArray(r.resource.deviceName) ? (r.resource.deviceName[0] as Json | undefined)?.name : undefined;
  findings.errors.push(...r.problems);
  if (r.problems.length > 0 || asid === null || partyKey === null || ods === null) return null;
  return {
    place: r.place,
    asid,
    partyKey,
    ods,
    name: typeof deviceName === 'string' && deviceName.trim() !== '' ? deviceName : null,
    manufacturer: manufacturer ?? null,
    interactions,
  };
}

/** The loader's own rule for an endpoint URL: the address must pass it as the directory will hold it. */
const endpointUrlRule = directorySchema.shape.providers.element.shape.endpoints.element.shape.url;

/** An MHS record that is not `active`: no endpoint, but its interactions still mark its party key's system as their provider. */
export interface InactiveMhsRecord {
  readonly inactive: true;
  readonly place: Place;
  readonly partyKey: string;
  readonly interactions: readonly InteractionUse[];
}

/** An MHS record from an `/Endpoint` entry; null with its problems; an InactiveMhsRecord, with a warning, when it is not active. */
export function readEndpoint(source: SdsSource, entry: unknown, index: number, findings: Findings): MhsRecord | InactiveMhsRecord | null {
  const r = new EntryReader(source, entry, index, 'Endpoint');
  if (r.resource === null) {
    findings.errors.push(...r.problems);
    return null;
  }
  const partyKey = r.oneIdentifier(SYSTEM.partyKey, 'identifier (nhsMhsPartyKey)', null, 'a party key');
  const status = r.resource.status;
  if (status !== undefined && status !== 'active') {
    // Its address and the rest do not matter; its interactions do: without them, a provider
    // whose endpoint is switched off would be imported as a consumer of that interaction.
    const interactions = r.interactions();
    findings.errors.push(...r.problems);
    if (r.problems.length > 0 || partyKey === null) return null;
    findings.warnings.push(`${placeText(r.place)}: status: ${printable(status)}, not active: no endpoint imported`);
    return { inactive: true, place: r.place, partyKey, interactions };
  }
  const ods = r.ods('managingOrganization');
  const fqdn = r.oneIdentifier(SYSTEM.fqdn, 'identifier (nhsMhsFQDN)', /^[A-Za-z0-9.-]{1,253}$/, 'a host name', false);
  const cpaId = r.oneIdentifier(SYSTEM.cpaId, 'identifier (nhsMhsCPAId)', null, 'a CPA id', false);
  const address = endpointAddress(r);
  const interactions = r.interactions();
  if (interactions.length === 0 && r.problems.length === 0) {
    r.fail(`extension (${EXTENSION.interaction})`, 'missing: an MHS record names the interaction it receives');
  }
  findings.errors.push(...r.problems);
  if (r.problems.length > 0 || partyKey === null || ods === null || address === null) return null;
  return { place: r.place, partyKey, ods, address, fqdn: fqdn === null ? null : fqdn.toLowerCase(), cpaId, interactions };
}

/**
 * The address as the directory will hold it. It must already be canonical: consumers
 * build their request URLs from the SDS address, and the gateway compares their target
 * with the registered string, so a silently corrected address would refuse every request.
 * Only a trailing slash is dropped (the gateway ignores it).
 */
function endpointAddress(r: EntryReader): string | null {
  const address = r.resource?.address;
  if (typeof address !== 'string' || address === '') {
    r.fail('address', 'missing (the service root)');
    return null;
  }
  const checked = endpointUrlRule.safeParse(address);
  if (!checked.success) {
    for (const issue of checked.error.issues) r.fail('address', `${printable(address)}: ${issue.message}`);
    return null;
  }
  return address.endsWith('/') ? address.slice(0, -1) : address;
}

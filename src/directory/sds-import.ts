import { Document, parse as parseYaml } from 'yaml';
import { agreementEntries, readAgreements, type AgreementEntry } from './agreements-csv';
import { checkDirectoryText } from './load-directory';
import type { DirectoryFile } from './schema';
import {
  bundleEntries,
  placeText,
  printable,
  readDevice,
  readEndpoint,
  type AsRecord,
  type Findings,
  type MhsRecord,
  type Place,
  type SdsSource,
} from './sds-records';

/**
 * `spine-gateway directory import`: SDS records to a directory file (ssp-reference.md
 * section 6). The rules, as SDS registers systems:
 *
 * - A provider is an AS record and MHS records sharing its party key; its interactions are
 *   on both (CMA registration), each MHS record's address being the service root for its
 *   interaction. So an interaction on the AS record and on an MHS record with the same
 *   party key is provided: the directory's provider entry gets an endpoint for it.
 * - A consumer's GP Connect interactions are on its AS record only. So the AS record's
 *   other interactions are consumed: the directory's consumer entry lists them. A system
 *   that is both has the same ASID and party key for both roles, and gets both entries.
 * - The FQDNs of the MHS records with a consumer's party key are the host names its client
 *   certificate must show (the SSP's sender FQDN check): `certificate_fqdns`.
 *
 * Every problem is collected (one line each: file, entry, field, why); with any error
 * there is no directory at all.
 */

export interface SdsImportInput {
  readonly devices: readonly SdsSource[];
  readonly endpoints: readonly SdsSource[];
  /** Null: given but unreadable (the caller reported it): no agreements, and no warning that there are none. */
  readonly agreements?: SdsSource | null;
  /** INTERACTIONS_FILE's IDs: others are imported with a warning. */
  readonly knownInteractions: ReadonlySet<string>;
  /** Stamped on every consumer; absent: the gateway's ENVIRONMENT setting applies. */
  readonly environment?: 'test' | 'live';
  /** False: no `certificate_fqdns` (for a gateway without mutual TLS, where the binding would refuse every such consumer). */
  readonly certificateFqdns?: boolean;
}

export interface SdsImportResult {
  /** The directory file's text; null when there is any error. */
  readonly yaml: string | null;
  readonly directory: DirectoryFile | null;
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

/** An AS record merged over every entry that repeats it (one search per interaction repeats the same record). */
interface System {
  readonly as: AsRecord;
  readonly places: Place[];
  readonly interactions: Set<string>;
}

interface ProvidedEndpoint {
  readonly address: string;
  readonly mhs: MhsRecord;
}

export function importSds(input: SdsImportInput): SdsImportResult {
  const findings: Findings = { errors: [], warnings: [] };
  /** Interaction ID → where it is first written (for the unknown-interaction warning). */
  const firstUse = new Map<string, string>();
  const noteInteractions = (place: Place, uses: AsRecord['interactions']) => {
    for (const use of uses) if (!firstUse.has(use.id)) firstUse.set(use.id, `${placeText(place)}: ${use.field}`);
  };
  /** A Device file that could not be read at all: every MHS record would lack its AS record, which says nothing new. */
  let devicesUnreadable = false;

  // AS records, merged by ASID.
  const systems = new Map<string, System>();
  const partyKeysSeen = new Set<string>();
  for (const source of input.devices) {
    const entries = bundleEntries(source, 'Device', findings);
    if (entries === null) devicesUnreadable = true;
    (entries ?? []).forEach((entry, i) => {
      const as = readDevice(source, entry, i, findings, partyKeysSeen);
      if (as === null) return;
      noteInteractions(as.place, as.interactions);
      const known = systems.get(as.asid);
      if (known === undefined) {
        systems.set(as.asid, { as, places: [as.place], interactions: new Set(as.interactions.map((u) => u.id)) });
        return;
      }
      for (const [field, here, there] of [
        ['identifier (nhsMhsPartyKey)', as.partyKey, known.as.partyKey],
        ['owner.identifier.value', as.ods, known.as.ods],
      ] as const) {
        if (here !== there) {
          findings.errors.push(
            `${placeText(as.place)}: ${field}: ASID ${as.asid} is also at ${placeText(known.as.place)} with ${printable(there)}, here ${printable(here)}: one AS record, two registrations`,
          );
        }
      }
      known.places.push(as.place);
      for (const use of as.interactions) known.interactions.add(use.id);
    });
  }
  const systemsByPartyKey = new Map<string, System[]>();
  for (const system of systems.values()) {
    const list = systemsByPartyKey.get(system.as.partyKey) ?? [];
    list.push(system);
    systemsByPartyKey.set(system.as.partyKey, list);
  }

  // MHS records: each interaction of each record goes to the one AS record with its party key that lists it.
  const mhsByPartyKey = new Map<string, MhsRecord[]>();
  const mhsByCpaId = new Map<string, MhsRecord>();
  /** `party key interaction` of MHS records that are not active. */
  const inactiveProvided = new Set<string>();
  /** ASID → interaction → where it is received. */
  const provided = new Map<string, Map<string, ProvidedEndpoint>>();
  for (const source of input.endpoints) {
    (bundleEntries(source, 'Endpoint', findings) ?? []).forEach((entry, i) => {
      const mhs = readEndpoint(source, entry, i, findings);
      if (mhs === null) return;
      if ('inactive' in mhs) {
        for (const use of mhs.interactions) inactiveProvided.add(`${mhs.partyKey} ${use.id}`);
        return;
      }
      noteInteractions(mhs.place, mhs.interactions);
      if (mhs.cpaId !== null) {
        const same = mhsByCpaId.get(mhs.cpaId);
        if (same !== undefined) {
          // The same MHS record from two searches is one record; two different ones with one CPA id are a broken export.
          if (!sameMhs(same, mhs)) {
            findings.errors.push(
              `${placeText(mhs.place)}: identifier (nhsMhsCPAId): ${printable(mhs.cpaId)} is also at ${placeText(same.place)} with other content`,
            );
          }
          return;
        }
        mhsByCpaId.set(mhs.cpaId, mhs);
      }
      const list = mhsByPartyKey.get(mhs.partyKey) ?? [];
      list.push(mhs);
      mhsByPartyKey.set(mhs.partyKey, list);
      const owners = systemsByPartyKey.get(mhs.partyKey);
      if (owners === undefined) {
        // An address without an ASID cannot be routed to (Ssp-To is an ASID); a Device export missing it would drop a provider silently.
        if (!partyKeysSeen.has(mhs.partyKey) && !devicesUnreadable) {
          findings.errors.push(
            `${placeText(mhs.place)}: identifier (nhsMhsPartyKey): no AS record (Device) has party key ${printable(mhs.partyKey)}; add its Device search result (ODS ${mhs.ods})`,
          );
        }
        return;
      }
      for (const use of mhs.interactions) {
        const providers = owners.filter((s) => s.interactions.has(use.id));
        if (providers.length === 0) {
          findings.warnings.push(
            `${placeText(mhs.place)}: ${use.field}: ${use.id} is not on the AS record of party key ${printable(mhs.partyKey)} (ASID ${owners.map((s) => s.as.asid).join(', ')}): not imported as an endpoint (a provider's interactions are on both records)`,
          );
          continue;
        }
        if (providers.length > 1) {
          findings.errors.push(
            `${placeText(mhs.place)}: ${use.field}: ${use.id} is on ${providers.length} AS records with party key ${printable(mhs.partyKey)} (ASIDs ${providers.map((s) => s.as.asid).join(', ')}); which one provides it is ambiguous`,
          );
          continue;
        }
        const provider = providers[0];
        if (mhs.ods !== provider.as.ods) {
          findings.errors.push(
            `${placeText(mhs.place)}: managingOrganization.identifier.value: ${mhs.ods}, but the AS record of ASID ${provider.as.asid} (${placeText(provider.as.place)}) is owned by ${provider.as.ods}`,
          );
          continue;
        }
        const byInteraction = provided.get(provider.as.asid) ?? new Map<string, ProvidedEndpoint>();
        provided.set(provider.as.asid, byInteraction);
        const existing = byInteraction.get(use.id);
        if (existing === undefined) {
          byInteraction.set(use.id, { address: mhs.address, mhs });
        } else if (existing.address !== mhs.address) {
          findings.errors.push(
            `${placeText(mhs.place)}: address: provider ${provider.as.asid} would receive ${use.id} at two endpoints, ${existing.address} (${placeText(existing.mhs.place)}) and ${mhs.address}; SDS holds one MHS record per ASID and interaction`,
          );
        } else {
          findings.warnings.push(
            `${placeText(mhs.place)}: ${use.field}: a second MHS record for provider ${provider.as.asid} and ${use.id}, at the same address as ${placeText(existing.mhs.place)}: imported once`,
          );
        }
      }
    });
  }

  const consumers: DirectoryFile['consumers'] = [];
  const providers: DirectoryFile['providers'] = [];
  for (const asid of [...systems.keys()].sort()) {
    const system = systems.get(asid)!;
    const { as } = system;
    const byInteraction = provided.get(asid);
    // Provided: on an MHS record with this party key too, whichever AS record it was given to.
    const onMhs = new Set((mhsByPartyKey.get(as.partyKey) ?? []).flatMap((m) => m.interactions.map((u) => u.id)));
    const consumed = [...system.interactions].filter((id) => !onMhs.has(id) && !inactiveProvided.has(`${as.partyKey} ${id}`)).sort();
    if (system.interactions.size === 0) {
      findings.warnings.push(`${placeText(as.place)}: extension (interaction): ASID ${asid} lists no interactions: not imported`);
      continue;
    }
    if (consumed.length > 0) {
      const fqdns = [...new Set((mhsByPartyKey.get(as.partyKey) ?? []).map((m) => m.fqdn).filter((f): f is string => f !== null))].sort();
      consumers.push({
        asid,
        ods: as.ods,
        ...(as.name !== null ? { name: as.name } : {}),
        interactions: consumed,
        ...(input.certificateFqdns !== false && fqdns.length > 0 ? { certificate_fqdns: fqdns } : {}),
        ...(input.environment !== undefined ? { environment: input.environment } : {}),
      });
    }
    if (byInteraction !== undefined && byInteraction.size > 0) {
      const urls = new Map<string, string[]>();
      for (const [interaction, { address }] of [...byInteraction].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        urls.set(address, [...(urls.get(address) ?? []), interaction]);
      }
      providers.push({
        asid,
        ods: as.ods,
        ...(as.name !== null ? { name: as.name } : {}),
        endpoints: [...urls].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([url, interactions]) => ({ url, interactions })),
      });
    }
  }
  const providerOds = new Map<string, string>();
  for (const p of providers) {
    const other = providerOds.get(p.ods);
    if (other !== undefined)
      findings.warnings.push(`providers ${other} and ${p.asid} are both of organisation ${p.ods}; SDS registers one provider system per organisation`);
    else providerOds.set(p.ods, p.asid);
  }

  let agreements: AgreementEntry[] | undefined;
  if (input.agreements === null) {
    // Reported by the caller; the import fails.
  } else if (input.agreements !== undefined) {
    agreements = agreementEntries(readAgreements(input.agreements, findings));
    const covered = (ods: string) => agreements!.some((a) => a.consumers === '*' || a.consumers.includes(ods));
    for (const c of consumers) {
      if (!covered(c.ods))
        findings.warnings.push(
          `consumer ${c.asid} (${c.ods}): no agreement in ${input.agreements.name} covers its organisation; the gateway will refuse it (FOT_CHECK_FAILED)`,
        );
    }
    if (agreements.some((a) => a.consumers === '*' && a.providers === '*')) {
      findings.warnings.push(
        `${input.agreements.name}: an agreement covers every consumer with every provider (*,*): the agreement check lets everything through`,
      );
    }
  } else {
    findings.warnings.push('no --agreements: the directory has no agreements key, so the gateway will not check data-sharing agreements (FoT)');
  }
  // Only the interactions that are imported: an MHS record left out has had its warning.
  const imported = new Set([...consumers.flatMap((c) => c.interactions), ...providers.flatMap((p) => p.endpoints.flatMap((e) => e.interactions))]);
  for (const [id, where] of firstUse) {
    if (imported.has(id) && !input.knownInteractions.has(id)) {
      findings.warnings.push(`${where}: ${id} is not in INTERACTIONS_FILE (not a known GP Connect interaction ID): imported as written`);
    }
  }
  if (consumers.length === 0 && providers.length === 0 && findings.errors.length === 0) {
    findings.warnings.push('the SDS records give no consumer and no provider: the directory is empty');
  }

  if (findings.errors.length > 0) return { yaml: null, directory: null, ...findings };
  const directory: DirectoryFile = { consumers, providers, ...(agreements !== undefined ? { agreements } : {}) };
  const yaml = render(directory, input, systems, provided);
  // The promise is "the gateway loads it as it is": hold the text to the gateway's own
  // loader, and make sure it reads back as exactly what was built.
  const check = checkDirectoryText(yaml, '(imported)', input.knownInteractions);
  if (check.problems.length === 0 && JSON.stringify(parseYaml(yaml)) !== JSON.stringify(directory)) {
    check.problems.push('it does not read back as the directory built (a value the YAML writer changed)');
  }
  if (check.problems.length > 0) {
    return { yaml: null, directory: null, errors: check.problems.map((p) => `the imported directory would not load: ${p}`), warnings: findings.warnings };
  }
  return { yaml, directory, ...findings };
}

function sameMhs(a: MhsRecord, b: MhsRecord): boolean {
  const ids = (m: MhsRecord) => m.interactions.map((u) => u.id).join(' ');
  return a.partyKey === b.partyKey && a.ods === b.ods && a.address === b.address && a.fqdn === b.fqdn && ids(a) === ids(b);
}

/** The directory as YAML, each entry preceded by a comment saying which SDS records it came from. */
function render(directory: DirectoryFile, input: SdsImportInput, systems: Map<string, System>, provided: Map<string, Map<string, ProvidedEndpoint>>): string {
  const doc = new Document(directory);
  const files = (flag: string, sources: readonly SdsSource[]) => sources.map((s) => ` ${flag} ${printable(s.name)}`).join('');
  doc.commentBefore = [
    ` Imported from SDS by spine-gateway directory import:${files('--sds-devices', input.devices)}${files('--sds-endpoints', input.endpoints)}${input.agreements ? files('--agreements', [input.agreements]) : ''}`,
    ' Re-run the import rather than editing by hand; check with spine-gateway directory check FILE.',
  ].join('\n');
  const note = (path: (string | number)[], text: string) => {
    const node = doc.getIn(path, true) as { commentBefore?: string } | undefined;
    if (node) node.commentBefore = ` ${text}`;
  };
  directory.consumers.forEach((c, i) => {
    const { as } = systems.get(c.asid)!;
    note(
      ['consumers', i],
      `AS ${as.asid}, party key ${printable(as.partyKey)}${as.manufacturer ? `, supplier ${printable(as.manufacturer)}` : ''}: ${placeText(as.place)}`,
    );
  });
  directory.providers.forEach((p, i) => {
    const { as } = systems.get(p.asid)!;
    note(['providers', i], `AS ${as.asid}, party key ${printable(as.partyKey)}: ${placeText(as.place)}`);
    p.endpoints.forEach((e, j) => {
      const records = [...provided.get(p.asid)!.values()].filter((pe) => pe.address === e.url).map((pe) => pe.mhs);
      const cpaIds = [...new Set(records.map((m) => m.cpaId).filter((id): id is string => id !== null))];
      note(
        ['providers', i, 'endpoints', j],
        `MHS${cpaIds.length ? ` CPA id ${cpaIds.map((id) => printable(id)).join(', ')}` : ''}: ${placeText(records[0].place)}`,
      );
    });
  });
  return doc.toString({ lineWidth: 0 });
}

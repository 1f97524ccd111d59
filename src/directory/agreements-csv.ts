import { ODS_PATTERN } from '../validate';
import { printable, type Findings, type SdsSource } from './sds-records';

/** One consumer organisation's cover under one agreement, as the register lists it. */
export interface AgreementRow {
  readonly line: number;
  readonly agreement: string;
  /** An ODS code, or `*` for every consumer organisation. */
  readonly consumer: string;
  /** An ODS code, or `*` for every provider organisation. */
  readonly provider: string;
}

export const AGREEMENTS_HEADER = ['agreement', 'consumer_ods', 'provider_ods'] as const;

/**
 * Splits one CSV line (RFC 4180 quoting within the line: `"a,b"`, `""` for a quote).
 * Null when a quote is left open: a field spanning lines has no place in this register.
 */
function csvFields(line: string): string[] | null {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else {
      field += c;
    }
  }
  if (quoted) return null;
  fields.push(field);
  return fields.map((f) => f.trim());
}

/**
 * Reads the agreements register: a header line `agreement,consumer_ods,provider_ods`, then
 * one consumer-provider pair per line, `*` for "every organisation". Blank lines are
 * skipped; a spreadsheet's byte-order mark and CRLF line ends are accepted.
 */
export function readAgreements(source: SdsSource, findings: Findings): AgreementRow[] {
  const rows: AgreementRow[] = [];
  const lines = source.text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let sawHeader = false;
  lines.forEach((text, i) => {
    const line = i + 1;
    if (text.trim() === '') return;
    const at = `${source.name}: line ${line}`;
    const fields = csvFields(text);
    if (fields === null) {
      findings.errors.push(`${at}: a quote is not closed`);
      return;
    }
    if (!sawHeader) {
      sawHeader = true;
      if (fields.length !== 3 || fields.some((f, k) => f.toLowerCase() !== AGREEMENTS_HEADER[k])) {
        findings.errors.push(`${at}: expected the header line ${AGREEMENTS_HEADER.join(',')}, found ${printable(text, 80)}`);
      }
      return;
    }
    if (fields.length !== 3) {
      findings.errors.push(`${at}: ${fields.length} fields, expected 3 (${AGREEMENTS_HEADER.join(',')})`);
      return;
    }
    const [agreement, consumer, provider] = fields;
    let ok = true;
    if (agreement === '') {
      findings.errors.push(`${at}: agreement: empty (the agreement's name, e.g. NDSA)`);
      ok = false;
    }
    for (const [field, value] of [
      ['consumer_ods', consumer],
      ['provider_ods', provider],
    ] as const) {
      if (value !== '*' && !ODS_PATTERN.test(value)) {
        findings.errors.push(`${at}: ${field}: ${value === '' ? 'empty' : printable(value, 40)} is not an ODS code (letters and digits) or *`);
        ok = false;
      }
    }
    if (ok) rows.push({ line, agreement, consumer, provider });
  });
  if (!sawHeader) findings.errors.push(`${source.name}: empty: expected the header line ${AGREEMENTS_HEADER.join(',')} and one line per agreement`);
  return rows;
}

/** A directory `agreements` entry. */
export interface AgreementEntry {
  id: string;
  consumers: string[] | '*';
  providers: string[] | '*';
}

/**
 * Turns the register's pairs into directory entries. A directory entry covers every
 * listed consumer with every listed provider, so rows are grouped only where that cross
 * product is exactly the rows' pairs: per agreement, the consumers that have the same set
 * of providers share one entry. Nothing is covered that the register does not list.
 */
export function agreementEntries(rows: readonly AgreementRow[]): AgreementEntry[] {
  // agreement → consumer ODS (or *) → provider ODS codes (or *)
  const cover = new Map<string, Map<string, Set<string> | '*'>>();
  for (const row of rows) {
    const byConsumer = cover.get(row.agreement) ?? new Map<string, Set<string> | '*'>();
    cover.set(row.agreement, byConsumer);
    const providers = byConsumer.get(row.consumer) ?? new Set<string>();
    byConsumer.set(row.consumer, row.provider === '*' || providers === '*' ? '*' : providers.add(row.provider));
  }
  const entries: AgreementEntry[] = [];
  for (const id of [...cover.keys()].sort()) {
    const groups = new Map<string, { consumers: string[]; providers: string[] | '*' }>();
    const byConsumer = cover.get(id)!;
    for (const consumer of [...byConsumer.keys()].sort()) {
      const set = byConsumer.get(consumer)!;
      const providers = set === '*' ? '*' : [...set].sort();
      const key = providers === '*' ? '*' : providers.join(',');
      const group = groups.get(key) ?? { consumers: [], providers };
      group.consumers.push(consumer);
      groups.set(key, group);
    }
    for (const { consumers, providers } of groups.values()) {
      entries.push({ id, consumers: consumers.includes('*') ? '*' : consumers, providers });
    }
  }
  return entries;
}

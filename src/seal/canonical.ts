import { hash } from 'node:crypto';

/**
 * The canonical forms of a final audit record: what its `record_hash` is the SHA-256 of,
 * and what `verify` recomputes from the stored row. The row's `canonical_form` column
 * names the form its hash was computed with (1 for rows from before the column existed).
 *
 * The record's values in the form's order, each written as `<UTF-8 byte length>:<text>`
 * and concatenated, where the text of
 * - a `text` column is the value itself (a UUID in lower case, as written);
 * - a `number` column is its shortest decimal form (JavaScript's `String(n)`, which
 *   ClickHouse's `toString` matches for the values records hold);
 * - a `time` column is its epoch milliseconds as an integer;
 * - a `list` column (an array of strings) is its elements, each written as
 *   `<UTF-8 byte length>:<element>`, concatenated ("" for an empty list): the same rule
 *   one level down, so no element can borrow bytes from its neighbour either (a list
 *   joined with "," would read `["A,B"]` as `["A","B"]`, and `[""]` as `[]`).
 * The length prefix makes the form unambiguous: no value can borrow bytes from its
 * neighbour, whatever it contains.
 *
 * Frozen: a column added to the table later joins a new version of this list, never an
 * existing one, so records hashed under an earlier version verify forever. Each version
 * is the one before it with columns added at the end (recordHashSql relies on that).
 * `version` (1 in flight, 2 final) is left out: only final records are hashed;
 * `record_hash` is the result; `canonical_form` says which list, and is checked by the
 * hash itself (the lists give texts of different shapes).
 */
export type CanonicalKind = 'text' | 'number' | 'time' | 'list';

export const CANONICAL_V1: readonly (readonly [name: string, kind: CanonicalKind])[] = [
  ['event_id', 'text'],
  ['trace_id', 'text'],
  ['received_at', 'time'],
  ['completed_at', 'time'],
  ['duration_ms', 'number'],
  ['consumer_asid', 'text'],
  ['consumer_ods', 'text'],
  ['provider_asid', 'text'],
  ['provider_ods', 'text'],
  ['interaction_id', 'text'],
  ['method', 'text'],
  ['target_host', 'text'],
  ['endpoint', 'text'],
  ['status', 'number'],
  ['outcome', 'text'],
  ['error_code', 'text'],
  ['failure_reason', 'text'],
  ['request_bytes', 'number'],
  ['response_bytes', 'number'],
  ['upstream_ttfb_ms', 'number'],
  ['upstream_connect_ms', 'number'],
  ['client_ip', 'text'],
  ['jwt_requesting_organization', 'text'],
  ['jwt_practitioner_id', 'text'],
  ['jwt_practitioner_role', 'text'],
  ['jwt_device', 'text'],
  ['jwt_reason_for_request', 'text'],
  ['jwt_requested_scope', 'text'],
  ['gateway_instance', 'text'],
  ['environment', 'text'],
  ['client_cert_subject', 'text'],
  ['client_cert_issuer', 'text'],
  ['client_cert_serial', 'text'],
  ['client_cert_sha256', 'text'],
  ['tls_protocol', 'text'],
  ['tls_cipher', 'text'],
  ['seal_chain', 'text'],
  ['seal_period', 'number'],
  ['seq', 'number'],
];

/**
 * Version 2 (issue 12): version 1's list, then the checks' findings (arrays of finding
 * codes, src/check/finding-codes.ts), so that a report-mode finding cannot be removed
 * from a sealed record unnoticed.
 */
export const CANONICAL_V2: readonly (readonly [name: string, kind: CanonicalKind])[] = [
  ...CANONICAL_V1,
  ['jwt_findings', 'list'],
  ['interaction_findings', 'list'],
];

/** The forms by their number (the `canonical_form` column). */
export const CANONICAL_FORMS: ReadonlyMap<number, readonly (readonly [name: string, kind: CanonicalKind])[]> = new Map([
  [1, CANONICAL_V1],
  [2, CANONICAL_V2],
]);

/** The form new final records are written (and hashed) with. */
export const CANONICAL_FORM = 2;

/** A record's values by column name: strings as stored, numbers, times as epoch milliseconds, lists as arrays of strings. */
export type CanonicalValues = Readonly<Record<string, string | number | readonly string[]>>;

/** The columns of canonical form `form`; throws for a form this code does not know. */
export function canonicalColumns(form: number): readonly (readonly [name: string, kind: CanonicalKind])[] {
  const columns = CANONICAL_FORMS.get(form);
  if (columns === undefined) throw new Error(`canonical form: ${form} is not a known form (${[...CANONICAL_FORMS.keys()].join(', ')})`);
  return columns;
}

/** The latest form's columns (every column any form hashes). */
function latestColumns(): readonly (readonly [name: string, kind: CanonicalKind])[] {
  return canonicalColumns(Math.max(...CANONICAL_FORMS.keys()));
}

/** The text of a list value: each element as `<UTF-8 byte length>:<element>`, concatenated. */
export function listText(elements: readonly string[]): string {
  let out = '';
  for (const e of elements) out += `${Buffer.byteLength(e)}:${e}`;
  return out;
}

/**
 * The canonical text of a record in the form its `canonical_form` value names (as the
 * stored row says; see the comment above).
 */
export function canonicalText(values: CanonicalValues): string {
  const form = values.canonical_form;
  if (form === undefined) throw new Error('canonical form: the record has no canonical_form');
  const columns = canonicalColumns(Number(form));
  // A column added after the record's form can only hold its default (the writer of that form knew nothing else).
  for (const [name, kind] of latestColumns().slice(columns.length))
    if (notDefault(values[name], kind)) throw new Error(`canonical form: a form ${Number(form)} record has a value in ${name}, which its form predates`);
  let out = '';
  for (const [name, kind] of columns) {
    const v = values[name];
    if (v === undefined) throw new Error(`canonical form: the record has no ${name}`);
    let t: string;
    if (kind === 'list') {
      if (!Array.isArray(v)) throw new Error(`canonical form: ${name} is not a list`);
      t = listText(v as readonly string[]);
    } else t = kind === 'text' ? String(v) : String(Number(v));
    out += `${Buffer.byteLength(t)}:${t}`;
  }
  return out;
}

/** The record's hash: SHA-256 of its canonical text (in the form it names), in lower-case hex. */
export function recordHash(values: CanonicalValues): string {
  return hash('sha256', canonicalText(values), 'hex');
}

/** A column of a later form not at its default (what a row of an earlier form holds there): SQL. */
function notDefaultSql([name, kind]: readonly [string, CanonicalKind]): string {
  return kind === 'list' ? `notEmpty(${name})` : kind === 'text' ? `${name} != ''` : `${name} != 0`;
}

/** The same, in JS, over a record's values (absent: the record predates the column, so at its default). */
function notDefault(v: CanonicalValues[string] | undefined, kind: CanonicalKind): boolean {
  if (v === undefined) return false;
  return kind === 'list' ? (v as readonly string[]).length > 0 : kind === 'text' ? String(v) !== '' : Number(v) !== 0;
}

/**
 * The same hash as a ClickHouse expression over the stored row, for `verify` to compute
 * next to the data, in the form the row's `canonical_form` names. `timeExpr` renders a
 * time column as epoch milliseconds in the store's type (`toUnixTimestamp64Milli(c)` for
 * DateTime64); `numberExpr` a number column as a value whose toString is the shortest
 * form (`toFloat64(c)` for a Decimal column).
 *
 * Each form extends the one before, so the text is the first form's values, then for
 * each later form the values it adds when the row's form is that one or a later one. A
 * row naming a form this code does not know gets a text no form produces (it starts with
 * a letter where a length must be), so its hash never matches: verify reports the row as
 * altered rather than trust a form it cannot recompute. So does a row of an earlier form
 * with a value in a column its form predates (a finding written into a form 1 row: the
 * form does not hash it, and no form 1 writer had one to write). Only functions
 * ClickHouse 18.16 has (multiIf, arrayMap, arrayStringConcat, notEmpty).
 */
export function recordHashSql(
  timeExpr: (column: string) => string = (c) => `toUnixTimestamp64Milli(${c})`,
  numberExpr: (column: string) => string = (c) => c,
): string {
  const value = ([name, kind]: readonly [string, CanonicalKind]) => {
    const text =
      kind === 'time'
        ? `toString(${timeExpr(name)})`
        : kind === 'number'
          ? `toString(${numberExpr(name)})`
          : kind === 'list'
            ? `arrayStringConcat(arrayMap(x -> concat(toString(length(x)), ':', toString(x)), ${name}))`
            : `toString(${name})`;
    return `toString(length(${text})), ':', ${text}`;
  };
  const forms = [...CANONICAL_FORMS.entries()].sort((a, b) => a[0] - b[0]);
  const [, first] = forms[0];
  const parts = first.map(value);
  let previous = first;
  for (const [form, columns] of forms.slice(1)) {
    const added = columns.slice(previous.length);
    parts.push(`if(canonical_form >= ${form}, concat(${added.map(value).join(', ')}), '')`);
    previous = columns;
  }
  const known = forms.map(([f]) => f).join(', ');
  // A row of an earlier form holding a value in a column its form predates (a finding in a
  // form 1 row): no writer made it, so it gets a text no form produces, like an unknown form.
  const latest = forms[forms.length - 1][1];
  const predated = forms
    .slice(0, -1)
    .map(([form, columns]) => `(canonical_form = ${form} AND (${latest.slice(columns.length).map(notDefaultSql).join(' OR ')}))`);
  parts.push(
    `multiIf(canonical_form NOT IN (${known}), concat('unknown canonical form ', toString(canonical_form)),` +
      ` ${predated.join(' OR ') || '0'}, concat('values its canonical form ', toString(canonical_form), ' predates'), '')`,
  );
  return `lower(hex(SHA256(concat(${parts.join(', ')}))))`;
}

// Each form must be the one before it with columns added at the end (recordHashSql builds on it).
{
  let previous: readonly (readonly [string, CanonicalKind])[] = [];
  for (const [form, columns] of [...CANONICAL_FORMS.entries()].sort((a, b) => a[0] - b[0])) {
    previous.forEach(([name, kind], i) => {
      if (columns[i][0] !== name || columns[i][1] !== kind) throw new Error(`canonical form ${form} does not extend the form before it`);
    });
    previous = columns;
  }
}

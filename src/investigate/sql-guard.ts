import { createHash } from 'node:crypto';
import { AUDIT_COLUMNS } from '../clickhouse';

/**
 * Auditor SQL (POST /audit/sql), made safe to run inside the gateway. With the embedded
 * engine ClickHouse runs in the gateway's own process: a query that reached a file or the
 * network would do so as the gateway. Layers, each enough for some attacks and all needed:
 *
 * 1. One statement: no `;` at all (the embedded engine runs every statement of a
 *    multi-statement text, EXPLAIN included). A trailing one is dropped.
 * 2. The text is wrapped: `SELECT * FROM (\n<text>\n) LIMIT n SETTINGS <limits>, readonly = 1`.
 *    Only a query can stand in a subquery: INSERT, DDL, SET, SYSTEM, INTO OUTFILE and
 *    FORMAT are syntax errors there.
 * 3. ClickHouse parses the wrapped text (EXPLAIN AST, which runs nothing) and the tree is
 *    checked: the wrapper's shape exactly (text that closes the parenthesis early changes
 *    it), no SETTINGS inside (a subquery's SETTINGS override the wrapper's, readonly
 *    included), no table function (file, url, s3, remote, executable, ...: readonly stops
 *    most but not all), no function that reads files or other tables (the scalar
 *    `file()` reads any file readonly or not; dictGet, joinGet), and every table in the
 *    audit database (no system.*, no other database).
 * 4. `readonly = 1` (last in the wrapper's SETTINGS, so nothing after it may change a
 *    setting), `max_execution_time`, `max_memory_usage`, and LIMIT rows + 1 (truncated).
 */

export interface SqlLimits {
  database: string;
  maxRows: number;
  timeoutMs: number;
}

/** Memory one auditor query may use: the embedded engine's memory is the gateway's. */
export const SQL_MAX_MEMORY = 512 * 1024 * 1024;
export const SQL_MAX_CHARS = 20_000;

export class SqlRefused extends Error {}

/** The statement to EXPLAIN and then run (the same text). Throws SqlRefused for what never needs the engine to refuse. */
export function wrapAuditorSql(sql: string, limits: SqlLimits): string {
  let text = sql.trim();
  if (text.endsWith(';')) text = text.slice(0, -1).trimEnd();
  if (text.length === 0) throw new SqlRefused('sql is empty: send one SELECT statement');
  if (text.length > SQL_MAX_CHARS) throw new SqlRefused(`sql is longer than ${SQL_MAX_CHARS} characters`);
  if (text.includes(';')) throw new SqlRefused('one statement only: ";" is not allowed anywhere (in a string, write char(59))');
  if (text.includes('\0')) throw new SqlRefused('sql holds a NUL character');
  const names: string[] = [];
  sqlShape(text, names);
  if (names.some(hasControlCharacter)) throw new SqlRefused('a quoted name holds a control character (a line break, say): not allowed');
  const seconds = Math.max(limits.timeoutMs, 100) / 1000;
  return (
    `SELECT * FROM (\n${text}\n) LIMIT ${limits.maxRows + 1}` + ` SETTINGS max_execution_time = ${seconds}, max_memory_usage = ${SQL_MAX_MEMORY}, readonly = 1`
  );
}

interface AstNode {
  label: string;
  children: AstNode[];
}

/** EXPLAIN AST's indented lines as a tree (one space per level). The embedded engine quotes each line as CSV: undone. */
export function parseAst(text: string): AstNode {
  const root: AstNode = { label: '', children: [] };
  const stack: Array<{ node: AstNode; depth: number }> = [{ node: root, depth: -1 }];
  for (let line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.length >= 2 && line.startsWith('"') && line.endsWith('"')) line = line.slice(1, -1).replaceAll('""', '"');
    const depth = line.length - line.trimStart().length;
    const node: AstNode = { label: line.trim(), children: [] };
    while (stack[stack.length - 1].depth >= depth) stack.pop();
    stack[stack.length - 1].node.children.push(node);
    stack.push({ node, depth });
  }
  if (root.children.length !== 1) throw new SqlRefused('the query did not parse as one SELECT');
  assertDeclaredChildren(root.children[0]);
  return root.children[0];
}

/**
 * Every node has exactly the children its line declares (`(children N)`, none when
 * absent). EXPLAIN AST prints names unescaped: a quoted name holding a line break would
 * print lines of its own, and hang the nodes after it under a fake one the checks would
 * not see. Such a line always leaves some node with more or fewer children than declared.
 */
function assertDeclaredChildren(node: AstNode): void {
  const declared = /\(children (\d+)\)$/.exec(node.label);
  if (node.children.length !== (declared === null ? 0 : Number(declared[1]))) throw new SqlRefused('the query did not parse as expected');
  for (const child of node.children) assertDeclaredChildren(child);
}

/** A node's kind and name: "Function file (alias x) (children 1)" → ["Function", "file"]. */
function kindAndName(label: string): [string, string] {
  const m = /^(\S+)(?: (\S+))?/.exec(label)!;
  return [m[1], m[2] ?? ''];
}

/** Functions that read files, other tables or dictionaries, or the host: refused wherever they appear. */
const DENIED_FUNCTIONS =
  /^(file|filecluster|url|urlcluster|remote|remotesecure|cluster|clusterallreplicas|s3|s3cluster|gcs|oss|cosn|hdfs|hdfscluster|azureblobstorage|azureblobstoragecluster|executable|executablepool|mysql|postgresql|sqlite|mongodb|redis|jdbc|odbc|input|merge|view|viewifpermitted|viewexplain|dictionary|loop|mergetreeindex|mergetreeprojection|iceberg\w*|deltalake\w*|hudi\w*|paimon\w*|arrowflight|ytsaurus|prometheusquery\w*|timeseries\w*|joinget\w*|dictget\w*|dicthas|dictisin|catboostevaluate|modelevaluate|hascolumnintable|filesystem\w*|getmacro|getserversetting|getserverport|addresstoline\w*|addresstosymbol|demangle|initialqueryid|queryid)$/;
const IN_FUNCTIONS = /^(global)?(not)?(null)?in$/i;

/**
 * Checks the parsed wrapper: exactly the shape wrapAuditorSql wrote (the client may add
 * its FORMAT as an Identifier after it), and the auditor's query inside it.
 */
export function checkAst(root: AstNode, database: string, cteNames: ReadonlySet<string>): void {
  const shape = (ok: boolean) => {
    if (!ok) throw new SqlRefused('send one SELECT statement (a query that closes the wrapping parenthesis or adds clauses after it is refused)');
  };
  shape(kindAndName(root.label)[0] === 'SelectWithUnionQuery');
  const [list, ...rest] = root.children;
  shape(rest.length <= 1 && rest.every((n) => kindAndName(n.label)[0] === 'Identifier'));
  shape(list?.label === 'ExpressionList (children 1)' && list.children.length === 1);
  const outer = list.children[0];
  shape(outer.label === 'SelectQuery (children 4)' && outer.children.length === 4);
  const [columns, tables, limit, settings] = outer.children;
  shape(columns.label === 'ExpressionList (children 1)' && columns.children[0]?.label === 'Asterisk');
  shape(/^Literal UInt64_\d+$/.test(limit.label) && settings.label === 'Set');
  shape(tables.label === 'TablesInSelectQuery (children 1)' && tables.children[0]?.label === 'TablesInSelectQueryElement (children 1)');
  const expr = tables.children[0].children[0];
  shape(expr?.label === 'TableExpression (children 1)' && expr.children[0]?.label === 'Subquery (children 1)');
  checkQuery(expr.children[0].children[0], database, cteNames);
}

function checkQuery(node: AstNode, database: string, cteNames: ReadonlySet<string>): void {
  const [kind, name] = kindAndName(node.label);
  if (kind === 'Set') throw new SqlRefused('SETTINGS are not allowed: the gateway sets the limits of auditor queries');
  if (kind === 'TableExpression') {
    for (const child of node.children) {
      const [k, n] = kindAndName(child.label);
      if (k === 'Function') throw new SqlRefused(`table functions are not allowed (${n.slice(0, 64)}): query the tables of ${database}`);
    }
  }
  if (kind === 'TableIdentifier') checkTable(name, database, cteNames);
  if (kind === 'Function') {
    if (DENIED_FUNCTIONS.test(name.toLowerCase()))
      throw new SqlRefused(`the function ${name.slice(0, 64)} is not allowed in auditor SQL: it reads files, other tables or the host`);
    // `x IN db.table` reads a table named by a bare identifier.
    if (IN_FUNCTIONS.test(name)) {
      const set = node.children[0]?.children[1];
      if (set !== undefined && kindAndName(set.label)[0] === 'Identifier') checkTable(kindAndName(set.label)[1], database, cteNames);
    }
  }
  for (const child of node.children) checkQuery(child, database, cteNames);
}

function checkTable(name: string, database: string, cteNames: ReadonlySet<string>): void {
  const dot = name.indexOf('.');
  if (dot === -1 ? cteNames.has(name) : name.slice(0, dot) === database) return;
  throw new SqlRefused(
    `only the tables of ${database} can be queried, named with their database (e.g. ${database}.transactions, ${database}.access_log, ${database}.audit_seals)`,
  );
}

/**
 * Names the query defines with `WITH name AS (...)`: unqualified table names that are its
 * own. Read from the text without its literals and comments, so that a string or a
 * comment cannot declare a name (which would then reach a table of the default database).
 */
export function cteNamesOf(sql: string): Set<string> {
  const names = new Set<string>();
  for (const m of sqlShape(sql).matchAll(/(?:\bWITH\b|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(/gi)) names.add(m[1]);
  return names;
}

/** Quoted names the access log keeps as written: the audit tables' and their columns'. Any other quoted name may be anything. */
const KNOWN_NAMES = new Set([
  ...AUDIT_COLUMNS.map((c) => c.name),
  ...['transactions', 'access_log', 'audit_seals', 'schema_migrations', 'spine_audit'],
  ...['at', 'who', 'role', 'action', 'route', 'query', 'rows', 'bytes', 'sha256', 'chain', 'period_start', 'period_end', 'digest', 'signature'],
]);

/**
 * What the access log keeps of a statement: its shape, with every literal replaced by ?
 * (an auditor may type a patient identifier into one), comments dropped, quoted
 * names other than the audit tables' and columns' replaced too; and the SHA-256 of the exact text,
 * so that whoever holds the text can show it was this one.
 */
export function redactSql(sql: string): { statement: string; sha256: string } {
  return { statement: sqlShape(sql).slice(0, 4000), sha256: createHash('sha256').update(sql, 'utf8').digest('hex') };
}

/** A statement's shape: literals as ?, comments dropped, unknown quoted names as "?", digit runs in names as ?, spaces collapsed. */
function sqlShape(sql: string, quotedNames?: string[]): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    const two = sql.slice(i, i + 2);
    if (c === "'") {
      i = endOfQuoted(sql, i, "'");
      out += '?';
    } else if (c === '"' || c === '`') {
      const end = endOfQuoted(sql, i, c);
      const inner = sql.slice(i + 1, end - 1);
      quotedNames?.push(inner);
      out += KNOWN_NAMES.has(inner) ? `${c}${inner}${c}` : `${c}?${c}`;
      i = end;
    } else if (two === '--' || c === '#') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end;
      out += ' ';
    } else if (two === '/*') {
      i = endOfComment(sql, i);
      out += ' ';
    } else if (c === '$') {
      const tag = /^\$([A-Za-z0-9_]*)\$/.exec(sql.slice(i, i + 66));
      if (tag === null) {
        out += c;
        i++;
      } else {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
        out += '?';
      }
    } else if (/[0-9]/.test(c) && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? ' ')) {
      const m = /^[0-9][0-9A-Za-z_.]*/.exec(sql.slice(i, i + 200))!;
      i += m[0].length;
      out += '?';
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i, i + 300))!;
      i += m[0].length;
      // Digits inside a bare name (x9000000009) are a number in disguise.
      out += /\d{4,}/.test(m[0]) ? m[0].replace(/\d{4,}/g, '?') : m[0];
    } else {
      out += /\s/.test(c) ? ' ' : c;
      i++;
    }
  }
  return out.replace(/ +/g, ' ').trim();
}

/** Where a quoted run that starts at `i` ends (after its closing quote): doubled quotes and backslash escapes stay inside. */
function endOfQuoted(s: string, i: number, q: string): number {
  let j = i + 1;
  while (j < s.length) {
    if (s[j] === '\\') j += 2;
    else if (s[j] === q) {
      if (s[j + 1] === q) j += 2;
      else return j + 1;
    } else j++;
  }
  return s.length;
}

const hasControlCharacter = (name: string) => [...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);

/** Where a block comment that starts at `i` ends: ClickHouse nests them (a comment opened inside one needs its own close). */
function endOfComment(s: string, i: number): number {
  let depth = 0;
  let j = i;
  while (j < s.length) {
    if (s.startsWith('/*', j)) {
      depth++;
      j += 2;
    } else if (s.startsWith('*/', j)) {
      j += 2;
      if (--depth === 0) return j;
    } else j++;
  }
  return s.length;
}

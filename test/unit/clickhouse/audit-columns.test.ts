import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeAuditRecord, interruptedRecord } from '../../../src/audit';
import { AUDIT_COLUMNS, SEARCH_COLUMNS, migrations } from '../../../src/clickhouse';
import { Transaction } from '../../../src/transaction';
import { REPO } from '../../helpers/test-kit';

/**
 * AUDIT_COLUMNS (src/clickhouse/audit-columns.ts) is the one list of the audit table's
 * columns. Every copy that cannot be derived from it is checked against it here, so a
 * column added in one place and missed in another fails this test, naming the copy.
 */
const names = AUDIT_COLUMNS.map((c) => c.name);

/** `name Type [DEFAULT x] [CODEC(...)] [AFTER other]` → name, type, after. */
function columnDefinition(text: string): { name: string; type: string; after?: string } {
  const m = /^(\w+) (.+?)(?: DEFAULT .+?)?(?: CODEC\(.+\))?(?: AFTER (\w+))?$/.exec(text.trim());
  if (!m) throw new Error(`cannot read the column definition "${text}"`);
  return { name: m[1], type: m[2], after: m[3] };
}

/** The table the migrations make, replayed in order: each column with its type and the migration that added it. */
function tableFromMigrations(): Array<{ name: string; type: string; migration: number }> {
  const table: Array<{ name: string; type: string; migration: number }> = [];
  for (const migration of migrations) {
    for (const statement of migration.statements) {
      const create = /CREATE TABLE IF NOT EXISTS \{db\}\.transactions\s*\(([\s\S]*?)\n\s*\)\s*ENGINE/.exec(statement);
      if (create) {
        for (const line of create[1].split('\n').map((l) => l.trim().replace(/,$/, ''))) {
          if (line === '' || line.startsWith('INDEX ')) continue;
          const c = columnDefinition(line);
          table.push({ name: c.name, type: c.type, migration: migration.version });
        }
        continue;
      }
      for (const clause of statement.split(/ADD COLUMN IF NOT EXISTS /).slice(1)) {
        const c = columnDefinition(clause.replace(/,\s*$/, ''));
        const at = c.after === undefined ? table.length : table.findIndex((t) => t.name === c.after) + 1;
        if (at === 0) throw new Error(`migration ${migration.version} adds ${c.name} after ${c.after}, which no migration made`);
        table.splice(at, 0, { name: c.name, type: c.type, migration: migration.version });
      }
    }
  }
  return table;
}

function transaction(withTls: boolean): Transaction {
  const t = new Transaction('GET', '127.0.0.1');
  if (withTls) t.tls = { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', subject: 'CN=a', issuer: 'CN=b', serial: '01', sha256: 'ab', hostNames: [] };
  t.finish('forwarded', 200);
  return t;
}

describe('the audit columns, one list', () => {
  test('the migrations, replayed, make exactly these columns, in this order, with these types, each in its migration', () => {
    expect(tableFromMigrations()).toEqual(AUDIT_COLUMNS.map((c) => ({ ...c })));
  });

  test('the record encoder writes exactly these keys, in both records, with and without TLS, and so does an interrupted record', () => {
    const context = { instance: 'h', environment: 'test' };
    const sorted = [...names].sort();
    for (const withTls of [false, true]) {
      const t = transaction(withTls);
      for (const version of [1, 2] as const) {
        expect({ withTls, version, keys: Object.keys(JSON.parse(encodeAuditRecord(t, version, context))).sort() }).toEqual({ withTls, version, keys: sorted });
      }
      const interrupted = interruptedRecord(Buffer.from(encodeAuditRecord(t, 1, context)), Date.now());
      expect(Object.keys(JSON.parse(interrupted)).sort()).toEqual(sorted);
    }
  });

  test('the 18.16 test DDL has exactly these columns, in this order', () => {
    const ddl = readFileSync(join(REPO, 'test', 'fixtures', 'clickhouse', 'transactions-18.16.sql'), 'utf8');
    const body = /\(([\s\S]*?)\n\)\s*ENGINE/.exec(ddl)![1];
    const columns = body
      .split('\n')
      .map((l) => l.trim().replace(/,$/, ''))
      .filter((l) => l !== '' && !l.startsWith('INDEX '))
      .map((l) => l.split(' ')[0]);
    expect(columns).toEqual(names);
  });

  test('the cluster DDL in docs/clickhouse-cluster.md has exactly these columns, in this order, with these types', () => {
    const readme = readFileSync(join(REPO, 'docs', 'clickhouse-cluster.md'), 'utf8');
    const body = /CREATE TABLE spine_audit\.transactions_local ON CLUSTER audit\s*\(([\s\S]*?)\n\)\s*ENGINE/.exec(readme)![1].replace(/--[^\n]*/g, '');
    // Items split at top-level commas (a type such as DateTime64(3, 'UTC') has its own).
    const items: string[] = [];
    let depth = 0;
    let item = '';
    for (const ch of body) {
      if (ch === ',' && depth === 0) {
        items.push(item);
        item = '';
        continue;
      }
      if (ch === '(') depth++;
      if (ch === ')') depth--;
      item += ch;
    }
    items.push(item);
    const columns = items
      .map((i) => i.replace(/\s+/g, ' ').trim())
      .filter((i) => i !== '' && !i.startsWith('INDEX '))
      .map((i) => columnDefinition(i))
      .map((c) => ({ name: c.name, type: c.type }));
    expect(columns).toEqual(AUDIT_COLUMNS.map((c) => ({ name: c.name, type: c.type })));
  });

  test('the search returns every column but version', () => {
    expect(SEARCH_COLUMNS).toEqual(names.filter((n) => n !== 'version'));
  });
});

import { createHash } from 'node:crypto';
import { SqlRefused, cteNamesOf, redactSql, wrapAuditorSql } from '../../../src/investigate/sql-guard';

const limits = { database: 'spine_audit', maxRows: 10, timeoutMs: 1500 };

describe('redactSql: what the access log keeps of auditor SQL', () => {
  test.each<[string, string, string]>([
    [
      'string literals',
      "SELECT * FROM spine_audit.transactions WHERE jwt_practitioner_id = '9434765919'",
      'SELECT * FROM spine_audit.transactions WHERE jwt_practitioner_id = ?',
    ],
    ['doubled and escaped quotes stay inside the literal', "SELECT 'a''b\\'c 9434765919' AS x", 'SELECT ? AS x'],
    ['numbers', 'SELECT 9434765919, 1.5e3, 0x1F', 'SELECT ?, ?, ?'],
    ['comments', 'SELECT 1 -- 9434765919\n/* Smith 9434765919 */ # 943', 'SELECT ?'],
    ['heredocs', 'SELECT $tag$9434765919$tag$, $$x$$', 'SELECT ?, ?'],
    ['quoted names other than the tables and columns', 'SELECT 1 AS "9434765919", `trace_id`, "Jane Smith"', 'SELECT ? AS "?", `trace_id`, "?"'],
    ['digit runs inside bare names', 'SELECT 1 AS x9434765919', 'SELECT ? AS x?'],
  ])('%s', (_name, sql, statement) => {
    const r = redactSql(sql);
    expect(r.statement).toBe(statement);
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test('the sha256 is of the exact text', () => {
    expect(redactSql('SELECT 1').sha256).not.toBe(redactSql('SELECT 1 ').sha256);
    expect(redactSql('SELECT 1').sha256).toBe(createHash('sha256').update('SELECT 1').digest('hex'));
  });
});

describe('cteNamesOf', () => {
  test('names declared by WITH, not by a string or a comment', () => {
    expect([...cteNamesOf('WITH a AS (SELECT 1), b AS (SELECT 2) SELECT * FROM a, b')]).toEqual(['a', 'b']);
    expect([...cteNamesOf("SELECT * FROM secret WHERE x = ', secret AS (' /* WITH other AS ( */")]).toEqual([]);
  });
});

describe('wrapAuditorSql', () => {
  test('one statement, wrapped with the limits and readonly last', () => {
    expect(wrapAuditorSql(' SELECT 1; ', limits)).toBe(
      'SELECT * FROM (\nSELECT 1\n) LIMIT 11 SETTINGS max_execution_time = 1.5, max_memory_usage = 536870912, readonly = 1',
    );
  });
  test.each<[string, string, RegExp]>([
    ['nothing', '', /empty/],
    ['two statements', 'SELECT 1; SELECT 2', /one statement/],
    ['a ; in a string (the engine splits before it parses)', "SELECT ';'", /one statement/],
    ['a NUL', 'SELECT 1\0', /NUL/],
    ['20,001 characters', 'x'.repeat(20_001), /longer/],
  ])('refuses %s', (_name, sql, message) => {
    expect(() => wrapAuditorSql(sql, limits)).toThrow(SqlRefused);
    expect(() => wrapAuditorSql(sql, limits)).toThrow(message);
  });
});

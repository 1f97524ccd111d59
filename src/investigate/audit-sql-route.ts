import express, { type NextFunction, type Request, type Response } from 'express';
import type { AuditStore } from '../clickhouse';
import type { Logger } from '../log';
import { storeUnavailable } from './audit-filters';
import { SqlRefused, checkAst, cteNamesOf, parseAst, redactSql, wrapAuditorSql, type SqlLimits } from './sql-guard';

const SQL_HELP = { sql: 'one SELECT over the audit database, its tables named with the database (e.g. spine_audit.transactions)' };

function invalid(res: Response, message: string): void {
  res.status(400).json({ error: 'invalid request', message, valid: SQL_HELP });
}

/**
 * POST /audit/sql {"sql":"SELECT ..."}: read-only SQL over the audit database for
 * auditors (sql-guard.ts says how it is kept read-only and inside that database). The
 * access log keeps the statement with its literals replaced and the SHA-256 of its text.
 */
export function auditSqlRoute(store: AuditStore, log: Logger, limits: Omit<SqlLimits, 'database'>) {
  const parseJson = express.json({ limit: '64kb', type: () => true });
  return [
    (req: Request, res: Response, next: NextFunction) => {
      parseJson(req, res, (err?: unknown) => {
        if (err === undefined) return next();
        res.locals.accessQuery = { invalid: 'body' };
        invalid(res, 'send a JSON body {"sql":"SELECT ..."} of at most 64 KiB');
      });
    },
    async (req: Request, res: Response): Promise<void> => {
      const body = req.body as unknown;
      const sql = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { sql?: unknown }).sql : undefined;
      const extra = body !== null && typeof body === 'object' ? Object.keys(body).filter((k) => k !== 'sql') : [];
      if (typeof sql !== 'string' || extra.length > 0) {
        res.locals.accessQuery = { invalid: 'body' };
        return invalid(res, 'send a JSON body with one key, sql: {"sql":"SELECT ..."}');
      }
      const { statement, sha256 } = redactSql(sql);
      res.locals.accessQuery = { sql: statement, sql_sha256: sha256 };
      const started = process.hrtime.bigint();
      let wrapped: string;
      try {
        wrapped = wrapAuditorSql(sql, { ...limits, database: store.database });
        checkAst(parseAst(await store.queryText(`EXPLAIN AST ${wrapped}`, 'TabSeparatedRaw')), store.database, cteNamesOf(sql));
        const answer = JSON.parse(await store.queryText(wrapped, 'JSONCompact')) as { meta: Array<{ name: string; type: string }>; data: unknown[][] };
        const truncated = answer.data.length > limits.maxRows;
        const rows = truncated ? answer.data.slice(0, limits.maxRows) : answer.data;
        res.locals.accessRows = rows.length;
        res.json({
          columns: answer.meta.map((m) => ({ name: m.name, type: m.type })),
          rows,
          rows_returned: rows.length,
          truncated,
          elapsed_ms: Math.round(Number(process.hrtime.bigint() - started) / 1e3) / 1e3,
        });
      } catch (err) {
        if (err instanceof SqlRefused) return invalid(res, err.message);
        const e = err as { code?: string; message?: string };
        if (e.code === '159') return invalid(res, `the query ran longer than AUDIT_SQL_TIMEOUT_MS (${limits.timeoutMs} ms) and was stopped`);
        if (e.code === '241') return invalid(res, 'the query needed more memory than an auditor query may use (512 MiB) and was stopped');
        if (e.code === '164') return invalid(res, 'the query tried to write or to change a setting; auditor SQL is read-only');
        if (/^\d{1,5}$/.test(e.code ?? '')) {
          // ClickHouse answered and refused the query (syntax, unknown column, ...). Its message
          // quotes the query, the caller's own text: it goes back to the caller only, never to a log.
          log.warn({ code: e.code }, 'auditor SQL refused by ClickHouse');
          return invalid(res, `ClickHouse refused the query (code ${e.code}): ${String(e.message ?? '').slice(0, 500)}`);
        }
        storeUnavailable(res, err, log, 'auditor SQL');
      }
    },
  ];
}

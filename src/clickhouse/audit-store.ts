import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import {
  buildExportBoundary,
  buildExportDistribution,
  buildExportPage,
  buildSearch,
  buildSummary,
  isoTime,
  isoTimes,
  type ExportWindow,
  type KeysetPosition,
  type SearchFilters,
  type SummaryDimension,
} from './audit-search';
import { buildAccessLogSearch, type AccessLogFilters, type AccessLogRow } from './access-log';
import { migrations, retentionStatement } from './migrations';
import { latestSealMs } from './audit-verify';
import type { Settings } from '../config';
import { classifyStoreError, StoreConfigError } from './store-error';
import type { Seal } from '../seal';

export interface AuditStoreOptions {
  /** CLICKHOUSE_URL, or undefined for the embedded engine under `dataDir`. */
  url: string | undefined;
  dataDir: string;
  /** Apply migrations and retention at start (AUDIT_SCHEMA_MANAGEMENT). */
  manageSchema: boolean;
  retentionDays: number;
  /** Days to keep rows of test consumers (AUDIT_TEST_RETENTION_DAYS); default 90. */
  testRetentionDays?: number;
  /** Per-request deadline for the server (ms). */
  timeoutMs: number;
}

/** The audit record as stored: one column per key (snake_case, as ClickHouse's). */
export type AuditRow = Record<string, string | number>;

/** One group of a summary: its key values in group_by order, counts, and the first and last time seen (ISO 8601). */
export interface SummaryRow {
  key: string[];
  transactions: number;
  refusals: number;
  errors: number;
  first_seen: string;
  last_seen: string;
}

const INSERT_SETTINGS = { date_time_input_format: 'best_effort' } as const;
/**
 * The embedded engine shares the gateway's cores: its insert threads run at the lowest
 * OS priority (nice 19), so the proxy's event loop comes first. (Limiting them to one
 * thread as well cost the shipper ~15% of its records/s, and was dropped.)
 */
const EMBEDDED_INSERT_SETTINGS = { ...INSERT_SETTINGS, os_thread_priority: 19 } as const;
/**
 * An export in the embedded engine: lowest priority, and one thread: a window is
 * 15,000 to 25,000 rows, which one thread reads at 200,000 rows per CPU-second where
 * several spent about 15% more CPU for the same rows (measured on 1,000,000 rows), CPU
 * that the proxy on the same cores would rather have.
 */
const EMBEDDED_EXPORT_SETTINGS = { os_thread_priority: '19', max_threads: 1 } as const;

/**
 * The only door to ClickHouse: the embedded chDB engine under DATA_DIR by default, a
 * server when CLICKHOUSE_URL is set, through the same @clickhouse/client API. Every
 * failure leaves here as an AuditStoreError that says whether it is worth retrying.
 */
export class AuditStore {
  readonly database: string;
  readonly kind: 'embedded' | 'server';
  private readonly client: ClickHouseClient;

  constructor(private readonly options: AuditStoreOptions) {
    if (options.url === undefined) {
      const path = join(options.dataDir, 'clickhouse');
      mkdirSync(path, { recursive: true });
      this.kind = 'embedded';
      this.database = 'spine_audit';
      this.client = createClient({ connection: createChdbConnection({ path }), log: { level: ClickHouseLogLevel.OFF } } as never);
    } else {
      const url = new URL(options.url);
      this.kind = 'server';
      this.database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'spine_audit';
      this.client = createClient({
        url: `${url.protocol}//${url.host}`,
        username: decodeURIComponent(url.username) || 'default',
        password: decodeURIComponent(url.password),
        request_timeout: options.timeoutMs,
        // The gateway logs store failures itself, once, with a code and a retry time.
        log: { level: ClickHouseLogLevel.OFF },
      });
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(this.database))
      throw new StoreConfigError(`CLICKHOUSE_URL: database name "${this.database}" is not a plain identifier (letters, digits and _, at most 64)`);
  }

  /** The store the settings describe (CLICKHOUSE_URL or the embedded engine under DATA_DIR). */
  static fromSettings(settings: Settings): AuditStore {
    return new AuditStore({
      url: settings.CLICKHOUSE_URL,
      dataDir: settings.DATA_DIR,
      manageSchema: settings.AUDIT_SCHEMA_MANAGEMENT,
      retentionDays: settings.AUDIT_RETENTION_DAYS,
      testRetentionDays: settings.AUDIT_TEST_RETENTION_DAYS,
      timeoutMs: settings.CLICKHOUSE_TIMEOUT_MS,
    });
  }

  get table(): string {
    return `${this.database}.transactions`;
  }

  private sql(statement: string): string {
    return statement.split('{db}').join(this.database);
  }

  /** Creates the database and applies pending migrations and the retention TTL rules, live and test (when schema management is on). */
  async prepare(): Promise<number[]> {
    if (!this.options.manageSchema) return [];
    try {
      await this.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${this.database}` });
      await this.client.command({
        query: this.sql(
          'CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, description String, applied_at DateTime) ENGINE = MergeTree ORDER BY version',
        ),
      });
      const done = await this.queryRows<{ version: number }>(this.sql('SELECT version FROM {db}.schema_migrations'), {});
      const applied = new Set(done.map((r) => Number(r.version)));
      const now: number[] = [];
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        for (const statement of m.statements) await this.client.command({ query: this.sql(statement) });
        await this.client.insert({
          table: `${this.database}.schema_migrations`,
          values: [{ version: m.version, description: m.description, applied_at: Math.floor(Date.now() / 1000) }],
          format: 'JSONEachRow',
        });
        now.push(m.version);
      }
      await this.client.command({ query: this.sql(retentionStatement(this.options.retentionDays, this.options.testRetentionDays ?? 90)) });
      return now;
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  /**
   * Inserts audit records given as JSON lines, sent as they are (the data of an
   * `INSERT ... FORMAT JSONEachRow` statement): no parse and no re-serialisation of what
   * the spool already holds as JSON. The lines are the gateway's own records, one per line.
   */
  async insertLines(lines: string): Promise<void> {
    try {
      await this.client.command({
        query: `INSERT INTO ${this.table} FORMAT JSONEachRow\n${lines}`,
        clickhouse_settings: this.kind === 'embedded' ? EMBEDDED_INSERT_SETTINGS : INSERT_SETTINGS,
      });
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  /**
   * Inserts seals (README: Tamper evidence) into `{db}.audit_seals`, one row per seal, its
   * fields as they are. Inserted at least once: a repeat collapses (ReplacingMergeTree on
   * chain and period_start), and the seal file stays the local copy.
   */
  async insertSeals(seals: readonly Seal[]): Promise<void> {
    if (seals.length === 0) return;
    try {
      await this.client.insert({
        table: `${this.database}.audit_seals`,
        values: seals as Seal[],
        format: 'JSONEachRow',
        clickhouse_settings: INSERT_SETTINGS,
      });
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  /** The chain's latest period_start in `{db}.audit_seals` (epoch ms), or null when it has none there. */
  async latestSealPeriod(chain: string): Promise<number | null> {
    return latestSealMs(this, chain);
  }

  /** A parameterised query (values bound server-side, never spliced into SQL). */
  async queryRows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    try {
      const result = await this.client.query({ query, query_params: params, format: 'JSONEachRow' });
      return (await result.json()) as T[];
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  /** Audit search (GET /audit/transactions): one row per transaction, newest first. */
  async search(filters: SearchFilters): Promise<AuditRow[]> {
    const { query, params } = buildSearch(this.table, filters);
    return (await this.queryRows<AuditRow>(query, params)).map(isoTimes);
  }

  /** GET /audit/summary: groups (keys as text, times ISO 8601), most transactions first, at most `limit + 1`. */
  async summary(filters: Omit<SearchFilters, 'limit'>, groupBy: readonly SummaryDimension[], limit: number): Promise<SummaryRow[]> {
    const { query, params } = buildSummary(this.table, filters, groupBy, limit);
    const rows = await this.queryRows<Record<string, string | number>>(query, params);
    return rows.map((r) => ({
      key: groupBy.map((d, i) => (d === 'hour' || d === 'day' ? isoTime(String(r[`k${i}`])) : String(r[`k${i}`]))),
      transactions: Number(r.transactions),
      refusals: Number(r.refusals),
      errors: Number(r.errors),
      first_seen: isoTime(String(r.first_seen)),
      last_seen: isoTime(String(r.last_seen)),
    }));
  }

  /** The key of the `pageSize`-th row after the filters' position, or null when fewer are left (an export at its cap asks for 1: is there more?). */
  async exportBoundary(filters: Omit<SearchFilters, 'limit'>, pageSize: number): Promise<KeysetPosition | null> {
    const { query, params } = buildExportBoundary(this.table, filters, pageSize);
    const [row] = await this.queryRows<{ at: string; id: string }>(query, params);
    return row === undefined ? null : { receivedAt: isoTime(row.at), eventId: row.id };
  }

  /**
   * How many rows match per time bucket of `widthMs` (within `within`), newest first,
   * counted without FINAL (an upper bound): what an export plans its windows from.
   */
  async exportDistribution(
    filters: Omit<SearchFilters, 'limit' | 'after'>,
    widthMs: number,
    within?: ExportWindow,
  ): Promise<Array<{ start: number; rows: number }>> {
    const { query, params } = buildExportDistribution(this.table, filters, widthMs, within);
    try {
      const result = await this.client.query({
        query,
        query_params: params,
        format: 'JSONEachRow',
        clickhouse_settings: this.kind === 'embedded' ? EMBEDDED_EXPORT_SETTINGS : undefined,
      });
      return ((await result.json()) as Array<{ start: string; n: string }>).map((r) => ({ start: Number(r.start), rows: Number(r.n) }));
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  /**
   * One export page: one line per row, each already a CSV record (TabSeparated-escaped)
   * or an NDJSON object, as the bytes the engine wrote (never decoded into a JS string);
   * within `window` when given.
   */
  async exportPage(filters: Omit<SearchFilters, 'limit'>, limit: number, format: 'csv' | 'ndjson', window?: ExportWindow): Promise<Buffer> {
    const { query, params } = buildExportPage(this.table, filters, limit, format, window);
    try {
      const result = await this.client.exec({
        query: `${query} FORMAT ${format === 'csv' ? 'TabSeparated' : 'TabSeparatedRaw'}`,
        query_params: params,
        // The embedded engine shares the gateway's cores: an export yields to the proxy.
        clickhouse_settings: this.kind === 'embedded' ? EMBEDDED_EXPORT_SETTINGS : undefined,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of result.stream as AsyncIterable<Buffer>) chunks.push(chunk);
      return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  /** Appends access-log entries (the auditors' own trail). */
  async insertAccessLog(rows: readonly AccessLogRow[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.client.command({
        query: `INSERT INTO ${this.database}.access_log FORMAT JSONEachRow\n${rows.map((r) => JSON.stringify(r)).join('\n')}`,
        clickhouse_settings: this.kind === 'embedded' ? EMBEDDED_INSERT_SETTINGS : INSERT_SETTINGS,
      });
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  /** GET /audit/access-log: newest first. */
  async accessLog(filters: AccessLogFilters): Promise<Array<Record<string, string | number>>> {
    const { query, params } = buildAccessLogSearch(`${this.database}.access_log`, filters);
    const rows = await this.queryRows<Record<string, string | number>>(query, params);
    for (const r of rows) r.at = isoTime(String(r.at));
    return rows;
  }

  /**
   * Raw text of a query with no parameters, in `format` (the auditor SQL's EXPLAIN and
   * run, which build their own guarded statement).
   */
  async queryText(query: string, format: 'TabSeparatedRaw' | 'JSONCompact'): Promise<string> {
    try {
      const result = await this.client.query({ query, format });
      return await result.text();
    } catch (err) {
      throw classifyStoreError(err);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

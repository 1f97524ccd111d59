import type { Response } from 'express';
import { z } from 'zod';
import { SUMMARY_DIMENSIONS, type KeysetPosition, type SearchFilters, type SummaryDimension } from '../clickhouse';
import { ASID_PATTERN, INTERACTION_PATTERN, ODS_PATTERN, TRACE_ID_PATTERN } from '../validate';
import { OUTCOMES } from '../transaction';
import { INTERACTION_FINDING_CODES, JWT_RULE_CODES } from '../check';

/**
 * The one list of audit filters, shared by search, export and summary: the schema each
 * value must fit, and what it takes in words (the `valid` list of every 400).
 */
const ISO = (example: string) => z.iso.datetime({ offset: true, message: `must be an ISO 8601 date-time, e.g. ${example}` });
const ods = (what: string) => z.string().regex(ODS_PATTERN, `must be ${what} (letters and digits, up to 12)`);

export const FILTERS = {
  // Compared in lower case: consumers send GUIDs in either case, and the record keeps what was sent.
  trace_id: z
    .string()
    .regex(TRACE_ID_PATTERN, 'must be an Ssp-TraceID: a GUID (any case); a request whose TraceID was not one is recorded with an empty trace_id')
    .transform((v) => v.toLowerCase()),
  consumer_asid: z.string().regex(ASID_PATTERN, 'must be an ASID (digits)'),
  provider_asid: z.string().regex(ASID_PATTERN, 'must be an ASID (digits)'),
  consumer_ods: ods("the consumer's ODS code"),
  provider_ods: ods("the provider's ODS code"),
  interaction_id: z.string().regex(INTERACTION_PATTERN, 'must be an interaction URN'),
  outcome: z.enum(OUTCOMES, { message: `must be one of ${OUTCOMES.join(', ')}` }),
  status: z.coerce.number({ message: 'must be an HTTP status (0 to 599)' }).int().min(0).max(599),
  error_code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be a stable error code, e.g. MISSING_OR_INVALID_HEADER or AMBIGUOUS_PATH (README, Refusals)'),
  environment: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be an environment label (lower-case letters, digits and dashes), e.g. live or test'),
  jwt_requesting_organization: ods('the ODS code of the JWT requesting_organization'),
  // The codes' own lists (src/check): a code that is not one of them could never match, so it is a 400 that lists them.
  jwt_finding: z.enum(JWT_RULE_CODES as [string, ...string[]], { message: `must be a JWT rule code: one of ${JWT_RULE_CODES.join(', ')}` }),
  interaction_finding: z.enum(INTERACTION_FINDING_CODES as [string, ...string[]], {
    message: `must be an interaction finding code: one of ${INTERACTION_FINDING_CODES.join(', ')}`,
  }),
  from: ISO('2026-11-21T09:00:00Z'),
  to: ISO('2026-11-21T10:00:00Z'),
} as const;

/** What each filter takes, in words: the `valid` list of a 400. */
export const FILTER_HELP: Record<keyof typeof FILTERS, string> = {
  trace_id: 'an Ssp-TraceID (a GUID, any case)',
  consumer_asid: 'an ASID (digits)',
  provider_asid: 'an ASID (digits)',
  consumer_ods: 'an ODS code (letters and digits, up to 12)',
  provider_ods: 'an ODS code (letters and digits, up to 12)',
  interaction_id: 'an interaction URN, e.g. urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
  outcome: `one of ${OUTCOMES.join(', ')}`,
  status: 'an HTTP status, 0 to 599 (0: none was sent)',
  error_code: 'a stable error code, e.g. FOT_CHECK_FAILED (README, Refusals)',
  environment: 'an environment label, e.g. live or test',
  jwt_requesting_organization: "the ODS code in the JWT's requesting_organization",
  jwt_finding: `a JWT rule the token broke (README "JWT check"): one of ${JWT_RULE_CODES.join(', ')}`,
  interaction_finding: `how the request failed to fit its interaction (README "Interaction check"): one of ${INTERACTION_FINDING_CODES.join(', ')}`,
  from: 'an ISO 8601 date-time, inclusive (e.g. 2026-11-21T09:00:00Z)',
  to: 'an ISO 8601 date-time, exclusive (e.g. 2026-11-21T10:00:00Z)',
};

export const MAX_LIMIT = 1000;
const limit = z.coerce
  .number({ message: `must be a whole number from 1 to ${MAX_LIMIT}` })
  .int()
  .min(1)
  .max(MAX_LIMIT)
  .default(100);
export const CURSOR_RULE = 'must be the next_cursor of a previous page, unchanged (an opaque base64url string); leave it out for the first page';
const cursor = z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, CURSOR_RULE);
const filterShape = Object.fromEntries(Object.entries(FILTERS).map(([k, v]) => [k, v.optional()])) as {
  [K in keyof typeof FILTERS]: z.ZodOptional<(typeof FILTERS)[K]>;
};

export const searchSchema = z
  .object({
    ...filterShape,
    limit,
    cursor: cursor.optional(),
    format: z.enum(['json', 'csv', 'ndjson'], { message: 'must be csv or ndjson (an export), or json (a page; the default)' }).optional(),
  })
  .strict();

export const SEARCH_HELP: Record<string, string> = {
  ...FILTER_HELP,
  limit: `rows per page, 1 to ${MAX_LIMIT} (default 100; an export ignores it)`,
  cursor: 'the next_cursor of the previous page (an export ignores it)',
  format: 'csv or ndjson: export every matching row as a file; json (default): one page',
};

const dimensions = Object.keys(SUMMARY_DIMENSIONS) as SummaryDimension[];
const GROUP_BY_RULE = `must be one or two of ${dimensions.join(', ')}, separated by a comma (e.g. provider_asid,consumer_ods)`;

export const summarySchema = z
  .object({
    ...filterShape,
    group_by: z
      .string({ message: GROUP_BY_RULE })
      .transform((v) => v.split(','))
      .pipe(
        z
          .array(z.enum(dimensions as [SummaryDimension, ...SummaryDimension[]], { message: GROUP_BY_RULE }))
          .min(1, GROUP_BY_RULE)
          .max(2, GROUP_BY_RULE)
          .refine((a) => new Set(a).size === a.length, GROUP_BY_RULE),
      ),
    limit,
  })
  .strict();

export const SUMMARY_HELP: Record<string, string> = {
  group_by: `one or two of ${dimensions.join(', ')} (comma-separated; hour and day group by received_at; jwt_finding and interaction_finding by each code a transaction's findings hold, '' for none)`,
  ...FILTER_HELP,
  limit: `most groups, 1 to ${MAX_LIMIT} (default 100); truncated says when there were more`,
};

/**
 * Parses a query string with `schema`. On failure answers 400 naming the first bad
 * parameter, why, and every valid one with what it takes, and returns null. A
 * parameter given twice (an array in req.query) is refused like any bad value.
 */
export function parseQuery<S extends z.ZodType>(schema: S, query: unknown, help: Record<string, string>, res: Response): z.output<S> | null {
  const parsed = schema.safeParse(query);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const unknown = (issue as { keys?: string[] }).keys;
  const name = unknown?.length ? unknown[0].slice(0, 64) : issue.path.length ? String(issue.path[0]) : 'query';
  const message = unknown?.length ? `unknown parameter; the valid ones are listed in "valid"` : issue.message;
  res.status(400).json({ error: 'invalid filter', filter: name, message, valid: help });
  // What the access log keeps of a refused request: the name of the parameter, never its value.
  res.locals.accessQuery = { invalid: unknown?.length ? 'unknown parameter' : name };
  return null;
}

export function encodeCursor(at: unknown, id: unknown): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

/** What encodeCursor writes: a time as ISO 8601 UTC with milliseconds, and an event id. */
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CURSOR_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A cursor is only ever one this API wrote: anything else is the caller's text and is
 * refused here, before it can reach ClickHouse (which would fail on it, and quote it).
 */
export function decodeCursor(cursor: string): KeysetPosition | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(value) || value.length !== 2) return null;
  const [receivedAt, eventId] = value as unknown[];
  if (typeof receivedAt !== 'string' || typeof eventId !== 'string' || !CURSOR_TIME.test(receivedAt) || !CURSOR_ID.test(eventId)) return null;
  const time = Date.parse(receivedAt);
  if (Number.isNaN(time) || new Date(time).toISOString() !== receivedAt) return null; // 2026-13-45 and the like
  return { receivedAt, eventId };
}

/** The filters of a parsed query (search, export or summary), without paging or shape. */
export function filtersOf(q: Record<string, unknown>): Omit<SearchFilters, 'limit'> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(FILTERS)) if (q[key] !== undefined) out[key] = q[key];
  return out as Omit<SearchFilters, 'limit'>;
}

/** A store failure as the caller sees it: 503, with the error logged by code (its message may quote a filter value). */
export function storeUnavailable(res: Response, err: unknown, log: { error(o: object, m: string): void }, what: string): void {
  const e = err as { code?: string; message?: string };
  if (/^\d{1,5}$/.test(e.code ?? '')) log.error({ code: e.code }, `${what} failed: the audit store refused the query`);
  else log.error({ code: e.code }, `${what} failed, the store did not answer: ${e.message ?? String(err)}`);
  if (!res.headersSent) res.status(503).json({ error: 'audit store unavailable', message: 'the audit store did not answer; try again shortly' });
}

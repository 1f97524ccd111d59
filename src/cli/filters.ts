import type { Command } from 'commander';

/** A filter option and the API parameter it maps to. */
interface FilterOption {
  readonly flag: string;
  readonly api: string;
  readonly help: string;
}

const opt = (api: string, placeholder: string, help: string): FilterOption => ({ flag: `--${api.replace(/_/g, '-')} <${placeholder}>`, api, help });

/** GET /audit/transactions' filters (and GET /audit/summary's), in the order help lists them. */
export const TRANSACTION_FILTERS: readonly FilterOption[] = [
  opt('trace_id', 'id', 'the Ssp-TraceID (a GUID, any case)'),
  opt('consumer_asid', 'asid', "the consumer's ASID (Ssp-From)"),
  opt('provider_asid', 'asid', "the provider's ASID (Ssp-To)"),
  opt('consumer_ods', 'code', "the consumer's ODS code"),
  opt('provider_ods', 'code', "the provider's ODS code"),
  opt('interaction_id', 'urn', 'the interaction ID (Ssp-InteractionID)'),
  opt('outcome', 'outcome', 'forwarded, denied, upstream_error, upstream_timeout, client_aborted, ...'),
  opt('status', 'code', 'the HTTP status the consumer got'),
  opt('error_code', 'code', 'a refusal or failure code, e.g. ASID_CHECK_FAILED_MESSAGESENDER'),
  opt('environment', 'env', 'test or live'),
  opt('jwt_requesting_organization', 'ods', "the JWT's requesting organisation (ODS code)"),
  opt('jwt_finding', 'code', 'a JWT rule the token broke, e.g. JWT_EXPIRED (README "JWT check"; a 400 lists every code)'),
  opt('interaction_finding', 'code', 'how the request failed its interaction, e.g. INTERACTION_METHOD (README "Interaction check")'),
];

export const TIME_FILTERS: readonly FilterOption[] = [
  opt('from', 'time', 'from this time, inclusive: ISO 8601 (2026-12-01T09:00:00Z), a date (2026-12-01, UTC) or an age (30m, 24h, 7d)'),
  opt('to', 'time', 'up to this time, exclusive (same forms as --from)'),
];

/** The option name a user typed for an API parameter, for the API's 400s: consumer_asid → --consumer-asid. */
export function optionName(api: string): string {
  const known =
    [...TRANSACTION_FILTERS, ...TIME_FILTERS].some((f) => f.api === api) || ['limit', 'cursor', 'group_by', 'format', 'who', 'action'].includes(api);
  return known ? `--${api.replace(/_/g, '-')}` : api;
}

export function addFilterOptions(cmd: Command, filters: readonly FilterOption[]): Command {
  for (const f of filters) cmd.option(f.flag, f.help);
  return cmd;
}

const camel = (api: string) => api.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** The filters the user gave, as query parameters with the API's names (times normalised). */
export function filterQuery(options: Record<string, unknown>, filters: readonly FilterOption[], now = Date.now()): URLSearchParams {
  const query = new URLSearchParams();
  for (const f of filters) {
    const value = options[camel(f.api)];
    if (typeof value !== 'string') continue;
    query.set(f.api, f.api === 'from' || f.api === 'to' ? normaliseTime(value, now) : value);
  }
  return query;
}

const AGE = /^(\d{1,6})([smhdw])$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * What people type for a time, as the API's ISO 8601: an age (`24h` is 24 hours ago), a
 * date (midnight UTC), or a date and time without an offset (UTC). Anything else goes to the
 * API as typed, whose 400 says what it takes.
 */
export function normaliseTime(value: string, now = Date.now()): string {
  const v = value.trim();
  const age = AGE.exec(v);
  if (age) return new Date(now - Number(age[1]) * UNIT_MS[age[2]]).toISOString();
  if (v === 'now') return new Date(now).toISOString();
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return `${v}T00:00:00Z`;
  const local = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d{1,9})?)?$/.exec(v);
  if (local) return `${local[1]}T${local[2]}${local[3] ?? ':00'}Z`;
  return v;
}

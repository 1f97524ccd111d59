/**
 * The admin API, as the page uses it: same origin, the token (if any) in the
 * Authorization header and nowhere else (never in a URL), and every failure turned into
 * an ApiError whose message a person can act on.
 */
import { readToken } from './token-store';

export type Filters = Record<string, string>;

export type ApiErrorKind = 'unauthorized' | 'forbidden' | 'invalid' | 'unavailable' | 'missing' | 'network' | 'other';

export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    /** For a 400: the filter the gateway named. */
    readonly filter?: string,
    /** Whether the request carried a token (a 401 then means that token was refused). */
    readonly tokenSent = false,
  ) {
    super(message);
  }
}

export interface TransactionsPage {
  transactions: Record<string, unknown>[];
  next_cursor: string | null;
}

export interface SummaryGroup {
  key: Record<string, string>;
  transactions: number;
  refusals: number;
  errors: number;
  first_seen: string;
  last_seen: string;
}

export interface Summary {
  group_by: string[];
  groups: SummaryGroup[];
  truncated: boolean;
}

export interface FirstBreak {
  chain: string;
  period: string | number;
  kind: string;
  event_id?: string;
  seq?: number;
  /** For digest_invalid: digest_mismatch, bad_signature, other_key (with key_id), two_seals. */
  reason?: string;
  key_id?: string;
}

export interface Verification {
  status: 'intact' | 'broken';
  periods_checked: number;
  records_checked: number;
  records_unsealed?: number;
  records_in_flight?: number;
  first_break: FirstBreak | null;
  from?: string | null;
  to?: string | null;
  key_id?: string;
}

/** The query string of `params`, skipping empty values. Only filters go in it: the token never does. */
export function query(params: Filters): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== '') q.set(name, value);
  const text = q.toString();
  return text === '' ? '' : `?${text}`;
}

/** GET `path` with the token; the Response when it is a 2xx, else an ApiError. */
export async function get(path: string, signal?: AbortSignal, accept = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept };
  const token = readToken();
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    // credentials 'omit': the admin API takes a bearer token only; no cookie is ever involved.
    res = await fetch(path, { headers, signal, credentials: 'omit', cache: 'no-store' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError('network', 'The gateway did not answer: is it running, and is this page open on its admin port?');
  }
  if (res.ok) return res;
  throw await errorOf(res, token !== null);
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await get(path, signal);
  return (await res.json()) as T;
}

async function errorOf(res: Response, tokenSent: boolean): Promise<ApiError> {
  let body: { error?: string; message?: string; filter?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  const said = typeof body.message === 'string' ? body.message : '';
  switch (res.status) {
    case 401:
      return new ApiError('unauthorized', 'This gateway asks for an admin token with the auditor role.', undefined, tokenSent);
    case 403:
      return new ApiError('forbidden', `That token is known, but may not read the audit trail${said ? `: ${said}` : ''}.`);
    case 400:
      return new ApiError('invalid', said || 'The gateway refused the request as invalid.', typeof body.filter === 'string' ? body.filter : undefined);
    case 404:
      return new ApiError('missing', 'This gateway does not offer that yet (404): it may be an older version, or audit may be off.');
    case 503:
      return new ApiError('unavailable', `The audit store is not answering${said ? `: ${said}` : ''}.`);
    default:
      return new ApiError('other', `The gateway answered ${res.status}${said ? `: ${said}` : ''}.`);
  }
}

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AdminTarget } from './admin-target';
import { failedError, unreachableError, usageError, CliError } from './cli-errors';

/** How long to wait for the connection, and for any byte once connected (a verify or an export may take long; silence this long means a hung gateway). */
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 300_000;
/** Error answers are small JSON documents: read at most this much of one. */
const MAX_ERROR_BODY = 64 * 1024;
/** A JSON answer (a page of rows, a summary, SQL's rows) is read whole: refuse anything beyond this. */
const MAX_JSON_BODY = 256 * 1024 * 1024;

/** The admin API's 400: `{"error","filter"?,"message","valid"?}`. */
export interface ApiProblem {
  error?: unknown;
  filter?: unknown;
  message?: unknown;
  valid?: unknown;
}

/**
 * Names the CLI gives the API's parameters (--consumer-asid for consumer_asid), so that the
 * API's 400 speaks of the option the user typed. Unknown names are shown as the API gives them.
 */
export type ParameterNames = (apiName: string) => string;

/**
 * The admin API over HTTP: one request per call, no keep-alive (the process exits when done),
 * the token in `Authorization` and nowhere else. Failures become CliErrors with the
 * contract's exit statuses: 400 → 2 (with the API's message and valid values), no
 * connection or 401/403 → 3, anything else the gateway says is wrong → 4.
 */
export class AdminClient {
  constructor(
    private readonly target: AdminTarget,
    private readonly names: ParameterNames = (n) => n,
  ) {}

  /** GET path?query, the JSON answer parsed. */
  async getJson<T>(path: string, query: URLSearchParams): Promise<T> {
    return this.readJson<T>(await this.send('GET', path, query), path);
  }

  /** POST path with a JSON body, the JSON answer parsed. */
  async postJson<T>(path: string, body: unknown): Promise<T> {
    return this.readJson<T>(await this.send('POST', path, new URLSearchParams(), JSON.stringify(body)), path);
  }

  /** GET path?query, the 200 answer's body as a stream (an export); failures as for getJson. */
  async getStream(path: string, query: URLSearchParams): Promise<IncomingMessage> {
    return this.send('GET', path, query);
  }

  /** Sends the request; resolves with a 200 answer, rejects with a CliError otherwise. */
  private send(method: 'GET' | 'POST', path: string, query: URLSearchParams, body?: string): Promise<IncomingMessage> {
    const url = new URL(this.target.baseUrl.href);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
    url.search = query.toString();
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'spine-gateway-cli' };
    if (this.target.token !== null) headers.Authorization = `Bearer ${this.target.token}`;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const where = this.target.shown;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, agent: false });
      let connected = false;
      const connectTimer = setTimeout(() => {
        req.destroy(Object.assign(new Error('no connection'), { code: 'ETIMEDOUT' }));
      }, CONNECT_TIMEOUT_MS);
      req.on('socket', (socket) => {
        socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
          connected = true;
          clearTimeout(connectTimer);
        });
      });
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('no answer'), { code: 'ESOCKETTIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(connectTimer);
        const code = err.code ?? err.message;
        if (!connected) {
          reject(
            unreachableError(
              `cannot reach the gateway's admin API at ${where} (${code}): is the gateway running, and is --admin-url (or SPINE_GATEWAY_ADMIN_URL) its admin port?`,
            ),
          );
        } else {
          reject(failedError(`the connection to ${where} failed before an answer came (${code})`));
        }
      });
      req.on('response', (res) => {
        clearTimeout(connectTimer);
        if (res.statusCode === 200) {
          resolve(res);
          return;
        }
        readBody(res, MAX_ERROR_BODY).then(
          (text) => reject(this.problem(res.statusCode ?? 0, text, path)),
          () => reject(this.problem(res.statusCode ?? 0, '', path)),
        );
      });
      req.end(body);
    });
  }

  private async readJson<T>(res: IncomingMessage, path: string): Promise<T> {
    let text: string;
    try {
      text = await readBody(res, MAX_JSON_BODY);
    } catch (err) {
      throw err instanceof CliError
        ? err
        : failedError(`the answer from ${this.target.shown}${path} broke off (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw failedError(`the answer from ${this.target.shown}${path} is not JSON: is --admin-url the gateway's admin port?`);
    }
  }

  /** A non-200 answer as the error the user can act on. */
  private problem(status: number, text: string, path: string): CliError {
    let body: ApiProblem = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === 'object') body = parsed as ApiProblem;
    } catch {
      /* not the admin API's JSON: handled below */
    }
    const message = typeof body.message === 'string' ? oneLine(body.message) : '';
    const isAdminApi = typeof body.error === 'string';
    const where = this.target.shown;
    if (status === 400 && isAdminApi) {
      const filter = typeof body.filter === 'string' ? body.filter : null;
      const head = filter !== null ? `${this.names(filter)}: ${message || String(body.error)}` : `${oneLine(String(body.error))}: ${message}`;
      return usageError(head, validLines(body.valid, this.names, filter, message));
    }
    if (status === 401) {
      return unreachableError(
        this.target.token === null
          ? `the gateway at ${where} needs an auditor token: set SPINE_GATEWAY_TOKEN, or give --token-file FILE`
          : `the gateway at ${where} refused the token (401): it is not one of ADMIN_TOKENS_FILE's`,
      );
    }
    if (status === 403) return unreachableError(`the gateway at ${where} refused the token (403)${message ? `: ${message}` : ''}`);
    if (!isAdminApi) {
      return unreachableError(`${where} answered ${status} without the admin API's JSON: is --admin-url the gateway's admin port (not its proxy port)?`);
    }
    if (status === 404) return failedError(`the gateway at ${where} has no ${path}: is audit on (AUDIT_ENABLED), and is the gateway this version or later?`);
    if (status === 503) return failedError(`the gateway's audit store did not answer (503)${message ? `: ${message}` : ''}`);
    return failedError(`the gateway at ${where} answered ${status} to ${path}${message ? `: ${message}` : ''}`);
  }
}

/**
 * The 400's `valid` object ({name: what it takes}) as lines, with the CLI's names. When the
 * 400 names a filter the list has, only that entry is shown, and not at all when the message
 * says it already; otherwise (an unknown parameter, a bad SQL request) the whole list.
 */
function validLines(valid: unknown, names: ParameterNames, filter: string | null = null, message = ''): string[] {
  if (valid === null || typeof valid !== 'object') return [];
  const all = valid as Record<string, unknown>;
  const text = (v: unknown) => oneLine(typeof v === 'string' ? v : JSON.stringify(v));
  if (filter !== null && filter in all) {
    const one = text(all[filter]);
    return message.includes(one) ? [] : [`valid: ${one}`];
  }
  const entries = Object.entries(all).map(([k, v]) => [names(k), text(v)] as const);
  if (entries.length === 0) return [];
  const width = Math.min(40, Math.max(...entries.map(([k]) => k.length)));
  return ['valid:', ...entries.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
}

/** Server text shown on a terminal: one line, no control characters. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this removes
  return text.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').trim();
}

function readBody(res: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        res.destroy();
        reject(failedError(`the answer is over ${Math.round(max / 1024 / 1024)} MiB: ask for fewer rows (--limit), or use export`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
  });
}

import { readFileSync } from 'node:fs';
import { usageError } from './cli-errors';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090';

/** Where the admin API is and the token to show it. The token is never printed, logged or put in an error. */
export interface AdminTarget {
  /** The admin API's base URL, without credentials, query or trailing slash. */
  readonly baseUrl: URL;
  /** The same, for messages: scheme, host, port and path only. */
  readonly shown: string;
  readonly token: string | null;
}

export interface TargetOptions {
  adminUrl?: string;
  token?: string;
  tokenFile?: string;
}

// What an HTTP field value can carry here: visible ASCII. Anything else would make Node's
// header check throw with the value in its message, so it is refused first, without echoing it.
const TOKEN_CHARS = /^[\x21-\x7e]{1,4096}$/;

/** --admin-url, else SPINE_GATEWAY_ADMIN_URL, else the default; --token, else --token-file, else SPINE_GATEWAY_TOKEN. */
export function resolveTarget(options: TargetOptions, env: NodeJS.ProcessEnv = process.env): AdminTarget {
  const raw = options.adminUrl ?? (env.SPINE_GATEWAY_ADMIN_URL || DEFAULT_ADMIN_URL);
  const from = options.adminUrl !== undefined ? '--admin-url' : env.SPINE_GATEWAY_ADMIN_URL ? 'SPINE_GATEWAY_ADMIN_URL' : 'the default admin URL';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`${from} is not a URL: give the gateway's admin port, e.g. ${DEFAULT_ADMIN_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`${from} must be an http:// or https:// URL, e.g. ${DEFAULT_ADMIN_URL}`);
  if (url.username || url.password) throw usageError(`${from} must not carry a user name or password: give the token with --token-file or SPINE_GATEWAY_TOKEN`);
  url.search = '';
  url.hash = '';
  // A path prefix (a proxy in front of the admin port) is kept, without its final slash.
  const shown = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;

  if (options.token !== undefined && options.tokenFile !== undefined) throw usageError('give --token or --token-file, not both');
  let token: string | null = null;
  let source = '';
  if (options.token !== undefined) {
    token = options.token;
    source = '--token';
  } else if (options.tokenFile !== undefined) {
    try {
      token = readFileSync(options.tokenFile, 'utf8').trim();
    } catch (err) {
      throw usageError(`cannot read --token-file ${options.tokenFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    source = `--token-file ${options.tokenFile}`;
  } else if (env.SPINE_GATEWAY_TOKEN) {
    token = env.SPINE_GATEWAY_TOKEN;
    source = 'SPINE_GATEWAY_TOKEN';
  }
  if (token !== null && !TOKEN_CHARS.test(token)) {
    throw usageError(
      `the token from ${source} is empty or has characters an HTTP header cannot carry (spaces, line breaks, non-ASCII); admin tokens are printable ASCII`,
    );
  }
  return { baseUrl: url, shown, token };
}

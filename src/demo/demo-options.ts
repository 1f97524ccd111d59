import { resolve } from 'node:path';
import { REPO_ROOT } from './catalogue';
import { MAX_RATE_PER_SECOND } from './traffic';

/** The demo's settings, from its own environment variables (the gateway's own settings keep their names and pass through). */
export interface DemoOptions {
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly providerPort: number;
  readonly rate: number;
  /** Directory file, DATA_DIR (data/) and the gateway's log live here (git-ignored). */
  readonly dir: string;
}

/** Each port with the variable that sets it, for the one line a port in use gets. */
export const PORT_SETTINGS = {
  proxyPort: { variable: 'DEMO_PROXY_PORT', what: "the gateway's proxy port", fallback: 8080 },
  adminPort: { variable: 'DEMO_ADMIN_PORT', what: "the gateway's admin port: explorer, /metrics", fallback: 9090 },
  providerPort: { variable: 'DEMO_PROVIDER_PORT', what: "the sample provider's port", fallback: 8081 },
} as const;
export type PortSetting = keyof typeof PORT_SETTINGS;

export class DemoOptionError extends Error {}

function portOf(env: NodeJS.ProcessEnv, key: PortSetting): number {
  const { variable, fallback } = PORT_SETTINGS[key];
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535)
    throw new DemoOptionError(`${variable} must be a port number, 0 to 65535 (0: any free port), got "${raw}"`);
  return Number(raw);
}

export function demoOptions(env: NodeJS.ProcessEnv = process.env): DemoOptions {
  const options = {
    proxyPort: portOf(env, 'proxyPort'),
    adminPort: portOf(env, 'adminPort'),
    providerPort: portOf(env, 'providerPort'),
    rate: 5,
    dir: resolve(REPO_ROOT, env.DEMO_DIR || 'demo'),
  };
  const used = (Object.keys(PORT_SETTINGS) as PortSetting[]).filter((k) => options[k] !== 0);
  for (const [i, a] of used.entries()) {
    const b = used.slice(i + 1).find((k) => options[k] === options[a]);
    if (b !== undefined)
      throw new DemoOptionError(`${PORT_SETTINGS[a].variable} and ${PORT_SETTINGS[b].variable} are both ${options[a]}: give each its own port`);
  }
  const rate = env.DEMO_RATE;
  if (rate !== undefined && rate !== '') {
    const n = Number(rate);
    if (!Number.isFinite(n) || n < 0.1 || n > MAX_RATE_PER_SECOND)
      throw new DemoOptionError(`DEMO_RATE must be a number of requests a second, 0.1 to ${MAX_RATE_PER_SECOND}, got "${rate}"`);
    options.rate = n;
  }
  return options;
}

/** The one line for a port already in use (or not allowed), naming the setting to change. */
export function portInUseLine(key: PortSetting, port: number, host: string, code: string | undefined): string {
  const { variable, what } = PORT_SETTINGS[key];
  const problem = code === 'EACCES' ? 'may not be opened by this user' : 'is already in use';
  return `demo: port ${port} on ${host} (${what}) ${problem}: stop what uses it, or set ${variable} to a free port (e.g. ${variable}=${port === 0 ? 18080 : port + 10000 <= 65535 ? port + 10000 : 0} npm run demo)`;
}

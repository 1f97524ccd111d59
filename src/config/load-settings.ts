import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { type z } from 'zod';
import { GatewayError } from '../errors';
import { settingsSchema, type Settings } from './settings';

/** A start-up configuration problem: one line an operator can act on. */
export class ConfigError extends GatewayError {
  declare readonly code: 'GW_ERR_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super('GW_ERR_CONFIG', message, options);
  }
}

const knownNames = new Set(Object.keys(settingsSchema.shape));

/**
 * Flattens the YAML file to setting names: `upstream: { timeout_ms: 5 }`,
 * `upstream.timeout_ms: 5` and `upstream_timeout_ms: 5` all mean UPSTREAM_TIMEOUT_MS.
 */
function flattenYaml(value: unknown, prefix: string, out: Record<string, string>, file: string): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const name = (prefix ? `${prefix}_` : '') + key.replace(/\./g, '_').toUpperCase();
      flattenYaml(child, name, out, file);
    }
    return;
  }
  if (!knownNames.has(prefix)) {
    throw new ConfigError(`config: ${file}: unknown setting "${prefix.toLowerCase()}"`);
  }
  out[prefix] = Array.isArray(value) ? value.join(',') : String(value);
}

function readYamlFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config: GATEWAY_CONFIG: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config: ${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const out: Record<string, string> = {};
  flattenYaml(doc ?? {}, '', out, file);
  return out;
}

function describeIssue(issue: z.core.$ZodIssue, raw: Record<string, string>): string {
  const name = String(issue.path[0] ?? '?');
  const got = raw[name];
  const shown = got === undefined ? '' : ` (got ${JSON.stringify(got.length > 60 ? got.slice(0, 60) + '…' : got)})`;
  return `config: ${name}: ${issue.message}${shown}`;
}

/**
 * Reads settings once at start-up: the YAML file named by GATEWAY_CONFIG (if any),
 * then the environment, which wins. Throws ConfigError naming the first bad setting.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const raw: Record<string, string> = env.GATEWAY_CONFIG ? readYamlFile(env.GATEWAY_CONFIG) : {};
  for (const name of knownNames) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[name] = value;
  }
  const result = settingsSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssue(result.error.issues[0], raw));
  const settings = result.data;
  if ((settings.TLS_CERT_FILE === undefined) !== (settings.TLS_KEY_FILE === undefined)) {
    throw new ConfigError('config: TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  }
  if (settings.TLS_CERT_FILE === undefined && (settings.TLS_CLIENT_CA_FILE !== undefined || settings.TLS_CRL_FILE !== undefined)) {
    throw new ConfigError('config: TLS_CLIENT_CA_FILE and TLS_CRL_FILE need TLS on PORT (TLS_CERT_FILE and TLS_KEY_FILE)');
  }
  if (settings.TLS_CRL_FILE !== undefined && settings.TLS_CLIENT_CA_FILE === undefined) {
    throw new ConfigError('config: TLS_CRL_FILE checks client certificates: set TLS_CLIENT_CA_FILE too');
  }
  if ((settings.UPSTREAM_CERT_FILE === undefined) !== (settings.UPSTREAM_KEY_FILE === undefined)) {
    throw new ConfigError('config: UPSTREAM_CERT_FILE and UPSTREAM_KEY_FILE must be set together');
  }
  return Object.freeze({ ...settings, ALLOWED_METHODS: Object.freeze([...settings.ALLOWED_METHODS]) }) as Settings;
}

import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadSettings } from '../../../src/config';
import { tempDir } from '../../helpers/test-kit';

describe('loadSettings', () => {
  test('every setting has a safe default', () => {
    const s = loadSettings({});
    expect(s.PORT).toBe(8080);
    expect(s.HOST).toBe('127.0.0.1');
    expect(s.ADMIN_PORT).toBe(9090);
    expect(s.AUDIT_FAILURE_MODE).toBe('closed');
    expect(s.UPSTREAM_TIMEOUT_MS).toBe(30000);
    expect(s.ALLOWED_METHODS).toEqual(['GET', 'HEAD', 'POST', 'PUT']);
    expect(s.FORWARDED_HEADER).toBe(true);
    expect(Object.isFrozen(s)).toBe(true);
  });

  test('YAML file, nested, dotted or flat, with the environment winning', () => {
    const dir = tempDir();
    const file = join(dir, 'gw.yaml');
    writeFileSync(file, 'port: 7000\nupstream:\n  timeout_ms: 1234\nadmin.port: 7001\nallowed_methods: [GET, POST]\n');
    const s = loadSettings({ GATEWAY_CONFIG: file, PORT: '7100' });
    expect(s.PORT).toBe(7100);
    expect(s.UPSTREAM_TIMEOUT_MS).toBe(1234);
    expect(s.ADMIN_PORT).toBe(7001);
    expect(s.ALLOWED_METHODS).toEqual(['GET', 'POST']);
  });

  test.each([
    [{ PORT: 'eighty' }, /^config: PORT: .*\(got "eighty"\)$/],
    [{ PORT: '70000' }, /^config: PORT: .*65535/],
    [{ AUDIT_FAILURE_MODE: 'maybe' }, /^config: AUDIT_FAILURE_MODE: .*closed.*open/],
    [{ UPSTREAM_TIMEOUT_MS: '0' }, /^config: UPSTREAM_TIMEOUT_MS: /],
    // The TTL is a DateTime (seconds to 2106): more days would wrap into the past and delete every row.
    [{ AUDIT_RETENTION_DAYS: '30000' }, /^config: AUDIT_RETENTION_DAYS: .*25000/],
    [{ ALLOWED_METHODS: 'get' }, /^config: ALLOWED_METHODS: /],
    [{ FORWARDED_HEADER: 'perhaps' }, /^config: FORWARDED_HEADER: /],
    [{ CLICKHOUSE_URL: 'ftp://x' }, /^config: CLICKHOUSE_URL: /],
    [{ TLS_CERT_FILE: '/x.pem' }, /^config: TLS_CERT_FILE and TLS_KEY_FILE must be set together$/],
    [{ WORKERS: '0' }, /^config: WORKERS: /],
    [{ WORKERS: '65' }, /^config: WORKERS: /],
    [{ WORKERS: 'many' }, /^config: WORKERS: /],
    [{ GATEWAY_CONFIG: '/nonexistent/gw.yaml' }, /^config: GATEWAY_CONFIG: cannot read \/nonexistent\/gw\.yaml: ENOENT$/],
  ])('%j is refused with one clear line', (env, message) => {
    let error: unknown;
    try {
      loadSettings(env as NodeJS.ProcessEnv);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  test('WORKERS: 1 by default, a number, or auto (one per core)', () => {
    expect(loadSettings({}).WORKERS).toBe(1);
    expect(loadSettings({ WORKERS: '3' }).WORKERS).toBe(3);
    expect(loadSettings({ WORKERS: 'auto' }).WORKERS).toBe(Math.min(64, availableParallelism()));
  });

  test('an unknown key in the YAML file is refused', () => {
    const file = join(tempDir(), 'gw.yaml');
    writeFileSync(file, 'upstream_timeout: 5\n');
    expect(() => loadSettings({ GATEWAY_CONFIG: file })).toThrow('unknown setting "upstream_timeout"');
  });
});

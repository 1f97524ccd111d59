import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveTarget } from '../../../src/cli/admin-target';
import { EXIT, type CliError } from '../../../src/cli/cli-errors';
import { tempDir } from '../../helpers/test-kit';

function refusal(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    return err as CliError;
  }
  throw new Error('did not throw');
}

describe('admin URL and token', () => {
  test('--admin-url, else SPINE_GATEWAY_ADMIN_URL, else 127.0.0.1:9090; a path prefix kept', () => {
    expect(resolveTarget({}, {}).shown).toBe('http://127.0.0.1:9090');
    expect(resolveTarget({}, { SPINE_GATEWAY_ADMIN_URL: 'https://audit.example/gw/' }).shown).toBe('https://audit.example/gw');
    expect(resolveTarget({ adminUrl: 'http://127.0.0.1:1' }, { SPINE_GATEWAY_ADMIN_URL: 'http://x' }).shown).toBe('http://127.0.0.1:1');
  });

  test('bad URLs are bad usage; credentials in the URL are refused (they would be shown in messages)', () => {
    expect(refusal(() => resolveTarget({ adminUrl: 'not a url' }, {})).exitStatus).toBe(EXIT.USAGE);
    expect(refusal(() => resolveTarget({ adminUrl: 'ftp://x' }, {})).message).toMatch(/must be an http/);
    const e = refusal(() => resolveTarget({ adminUrl: 'http://user:hunter2@127.0.0.1:9090' }, {}));
    expect(e.message).not.toContain('hunter2');
  });

  test('--token, else --token-file (trimmed), else SPINE_GATEWAY_TOKEN; not both flags', () => {
    const file = join(tempDir('cli-token-'), 't');
    writeFileSync(file, 'from-file\n');
    expect(resolveTarget({ token: 'flag' }, { SPINE_GATEWAY_TOKEN: 'env' }).token).toBe('flag');
    expect(resolveTarget({ tokenFile: file }, { SPINE_GATEWAY_TOKEN: 'env' }).token).toBe('from-file');
    expect(resolveTarget({}, { SPINE_GATEWAY_TOKEN: 'env' }).token).toBe('env');
    expect(resolveTarget({}, {}).token).toBeNull();
    expect(refusal(() => resolveTarget({ token: 'a', tokenFile: file }, {})).exitStatus).toBe(EXIT.USAGE);
  });

  test('a token a header cannot carry is refused, and never echoed', () => {
    for (const bad of ['', 'has space', 'line\nbreak', 'naïve']) {
      const e = refusal(() => resolveTarget({ token: bad }, {}));
      expect(e.exitStatus).toBe(EXIT.USAGE);
      if (bad !== '') expect(e.message).not.toContain(bad);
    }
  });
});

import { adminBindAddress, isLoopback } from '../../../src/admin';

describe('isLoopback', () => {
  test.each(['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '[::1]', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])('%s is loopback', (h) => {
    expect(isLoopback(h)).toBe(true);
  });
  test.each(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '127.example.org', '::ffff:10.0.0.1', 'gateway.local', '1270.0.0.1'])('%s is not', (h) => {
    expect(isLoopback(h)).toBe(false);
  });
});

describe('adminBindAddress', () => {
  test('follows a loopback HOST, or any HOST when tokens are set', () => {
    expect(adminBindAddress({ HOST: '127.0.0.1', ADMIN_HOST: undefined, ADMIN_TOKENS_FILE: undefined })).toEqual({ host: '127.0.0.1', warning: null });
    expect(adminBindAddress({ HOST: '0.0.0.0', ADMIN_HOST: undefined, ADMIN_TOKENS_FILE: '/t.yaml' })).toEqual({ host: '0.0.0.0', warning: null });
  });
  test('stays on 127.0.0.1 for a non-loopback HOST without tokens, and says why and how to open it', () => {
    for (const HOST of ['0.0.0.0', '::', '10.0.0.1']) {
      const bind = adminBindAddress({ HOST, ADMIN_HOST: undefined, ADMIN_TOKENS_FILE: undefined });
      expect(bind.host).toBe('127.0.0.1');
      expect(bind.warning).toMatch(/set ADMIN_TOKENS_FILE/);
    }
  });
  test('an explicit ADMIN_HOST wins; a non-loopback one needs tokens', () => {
    expect(adminBindAddress({ HOST: '0.0.0.0', ADMIN_HOST: '::1', ADMIN_TOKENS_FILE: undefined }).host).toBe('::1');
    expect(adminBindAddress({ HOST: '127.0.0.1', ADMIN_HOST: '10.0.0.9', ADMIN_TOKENS_FILE: '/t.yaml' }).host).toBe('10.0.0.9');
    expect(() => adminBindAddress({ HOST: '127.0.0.1', ADMIN_HOST: '0.0.0.0', ADMIN_TOKENS_FILE: undefined })).toThrow(/ADMIN_HOST=0\.0\.0\.0 .*set ADMIN_TOKENS_FILE/);
  });
});

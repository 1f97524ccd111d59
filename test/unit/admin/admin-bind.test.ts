import { adminBindAddress, isLoopback } from '../../../src/admin';

describe('isLoopback', () => {
  test.each(['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '[::1]', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])(
    '%s is loopback',
    (h) => {
      expect(isLoopback(h)).toBe(true);
    },
  );
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
    expect(() => adminBindAddress({ HOST: '127.0.0.1', ADMIN_HOST: '0.0.0.0', ADMIN_TOKENS_FILE: undefined })).toThrow(
      /ADMIN_HOST=0\.0\.0\.0 .*set ADMIN_TOKENS_FILE/,
    );
  });
});

/**
 * Second pass (attacking the item 8 fix): other spellings. A spelling of a loopback
 * address that isLoopback does not recognise only errs the safe way (the admin port stays
 * on 127.0.0.1, or an explicit ADMIN_HOST stops start-up); what must never happen is a
 * spelling that reaches beyond this machine being taken for loopback.
 */
describe('isLoopback, second pass', () => {
  test.each([
    '0', // Node binds "0" to 0.0.0.0
    '::0',
    '[::]',
    '0:0:0:0:0:0:0:0',
    '::ffff:0.0.0.0',
    '::ffff:0:0',
    '::ffff:10.0.0.1',
    '::ffff:128.0.0.1',
    '::127.0.0.1',
    '127.0.0.1.',
    'localhost.',
    'localhost.localdomain',
    'localhost.example.org',
    '127.0.0.1.nip.io',
    'x.127.0.0.1',
    '0x7f000001',
    '2130706433',
    '0177.0.0.1',
    '127.1',
    '127.0.1',
    '127.000.000.001',
    'fe80::1',
    'fe80::1%lo',
    '::2',
    '::1:0',
    '1::',
    '::1 ',
    ' 127.0.0.1',
    '127.0.0.1 ',
    '127.0.0.1/8',
    '127.0.0.1:80',
    '',
  ])('%j is not loopback (or not recognised as one)', (h) => {
    expect(isLoopback(h)).toBe(false);
  });
  test.each(['127.0.0.2', '127.1.2.3', '::1', 'LocalHost', '::FFFF:127.0.0.1', '[::ffff:127.0.0.1]'])('%s is loopback', (h) => {
    expect(isLoopback(h)).toBe(true);
  });
});

describe('adminBindAddress, second pass', () => {
  test.each(['::', '[::]', '0', '::ffff:0.0.0.0', '127.1', 'localhost.', 'gateway.local', '0x7f000001'])(
    'HOST=%s without tokens: the admin port on 127.0.0.1, with the warning',
    (HOST) => {
      const bind = adminBindAddress({ HOST, ADMIN_HOST: undefined, ADMIN_TOKENS_FILE: undefined });
      expect(bind).toEqual({ host: '127.0.0.1', warning: expect.stringMatching(/set ADMIN_TOKENS_FILE/) });
    },
  );
  test.each(['::1', 'localhost', '127.0.0.2', '::ffff:127.0.0.1'])('HOST=%s (loopback) without tokens: the admin port follows it, no warning', (HOST) => {
    expect(adminBindAddress({ HOST, ADMIN_HOST: undefined, ADMIN_TOKENS_FILE: undefined })).toEqual({ host: HOST, warning: null });
  });
  test.each(['::', '[::]', '0', '::ffff:0.0.0.0', '127.1', 'localhost.', 'gateway.local', '::ffff:10.0.0.1', 'fe80::1%lo'])(
    'ADMIN_HOST=%s without tokens: refused',
    (ADMIN_HOST) => {
      expect(() => adminBindAddress({ HOST: '127.0.0.1', ADMIN_HOST, ADMIN_TOKENS_FILE: undefined })).toThrow(/ADMIN_TOKENS_FILE is not set/);
    },
  );
});

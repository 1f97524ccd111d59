import { join } from 'node:path';
import { REPO_ROOT } from '../../../src/demo/catalogue';
import { DemoOptionError, demoOptions, portInUseLine } from '../../../src/demo/demo-options';

describe('demo options', () => {
  test('defaults: the README quick start ports, 5 a second, demo/ in the checkout', () => {
    expect(demoOptions({})).toEqual({ proxyPort: 8080, adminPort: 9090, providerPort: 8081, rate: 5, dir: join(REPO_ROOT, 'demo') });
  });

  test('each variable sets its value; 0 means any free port and may repeat', () => {
    expect(demoOptions({ DEMO_PROXY_PORT: '0', DEMO_ADMIN_PORT: '0', DEMO_PROVIDER_PORT: '18081', DEMO_RATE: '0.5', DEMO_DIR: '/tmp/x' })).toEqual({
      proxyPort: 0,
      adminPort: 0,
      providerPort: 18081,
      rate: 0.5,
      dir: '/tmp/x',
    });
  });

  test.each([
    [{ DEMO_ADMIN_PORT: '65536' }, 'DEMO_ADMIN_PORT must be a port number, 0 to 65535 (0: any free port), got "65536"'],
    [{ DEMO_PROVIDER_PORT: '-1' }, 'DEMO_PROVIDER_PORT must be a port number, 0 to 65535 (0: any free port), got "-1"'],
    [{ DEMO_PROVIDER_PORT: '8080' }, 'DEMO_PROXY_PORT and DEMO_PROVIDER_PORT are both 8080: give each its own port'],
    [{ DEMO_RATE: 'fast' }, 'DEMO_RATE must be a number of requests a second, 0.1 to 100, got "fast"'],
    [{ DEMO_RATE: '0' }, 'DEMO_RATE must be a number of requests a second, 0.1 to 100, got "0"'],
  ])('%j is refused: %s', (env, message) => {
    expect(() => demoOptions(env)).toThrow(new DemoOptionError(message));
  });

  test('a port in use, or not allowed, names the port, what it is for and the variable to change', () => {
    expect(portInUseLine('adminPort', 9090, '127.0.0.1', 'EADDRINUSE')).toBe(
      "demo: port 9090 on 127.0.0.1 (the gateway's admin port: explorer, /metrics) is already in use: stop what uses it, or set DEMO_ADMIN_PORT to a free port (e.g. DEMO_ADMIN_PORT=19090 npm run demo)",
    );
    expect(portInUseLine('providerPort', 80, '127.0.0.1', 'EACCES')).toMatch(
      /^demo: port 80 on 127\.0\.0\.1 \(the sample provider's port\) may not be opened by this user: .*DEMO_PROVIDER_PORT=10080 /,
    );
    expect(portInUseLine('proxyPort', 60000, '127.0.0.1', 'EADDRINUSE')).toContain('(e.g. DEMO_PROXY_PORT=0 npm run demo)');
  });
});

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { directoryYaml, okHandler, send, sspHeaders, startGateway, startProvider, tempDir, type RunningGateway, type TestProvider } from '../helpers/test-kit';
import { requireProgram } from '../helpers/system-programs';

/** TLS on the consumer port with a certificate made here (mutual TLS has its own suite). */
let provider: TestProvider;
let gw: RunningGateway;
let cert: Buffer;

beforeAll(async () => {
  const dir = tempDir('gw-tls-');
  const key = join(dir, 'key.pem');
  const crt = join(dir, 'cert.pem');
  requireProgram('openssl');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  cert = readFileSync(crt);
  provider = await startProvider(okHandler('over tls'));
  gw = await startGateway(directoryYaml({ metadata: provider.root }), { TLS_CERT_FILE: crt, TLS_KEY_FILE: key });
});
afterAll(async () => {
  // Set-up may have failed (a program not installed): its one line is the report.
  await gw?.stop();
  await provider?.close();
});

/** A request to the gateway over TLS, trusting its self-signed certificate. */
const get = (target: string, headers: Record<string, string>) => send(gw.url(target), { headers, tls: { ca: cert } });

test("forwards over TLS, with Forwarded proto=https, and no HSTS added to the provider's response", async () => {
  const r = await get(`${provider.root}/metadata`, sspHeaders());
  expect(r.status).toBe(200);
  expect(r.body.toString()).toBe('over tls');
  expect(r.headers['strict-transport-security']).toBeUndefined();
  const seen = provider.requests[provider.requests.length - 1];
  expect(seen.headers.forwarded).toBe('for=127.0.0.1;proto=https');
});

test("the gateway's own refusals over TLS carry HSTS", async () => {
  const r = await get(`${provider.root}/metadata`, sspHeaders({ 'Ssp-From': '111111111111' }));
  expect(r.status).toBe(403);
  expect(r.headers['strict-transport-security']).toMatch(/max-age=31536000/);
});

test.each(['TLSv1', 'TLSv1.1'] as const)('%s handshakes fail', async (version) => {
  const outcome = await new Promise<string>((resolve) => {
    const socket = connect(
      { host: '127.0.0.1', port: gw.proxyPort, ca: cert, servername: 'localhost', minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' },
      () => {
        socket.destroy();
        resolve('connected');
      },
    );
    socket.on('error', (e) => resolve(`refused: ${(e as NodeJS.ErrnoException).code}`));
  });
  expect(outcome).toMatch(/^refused/);
});

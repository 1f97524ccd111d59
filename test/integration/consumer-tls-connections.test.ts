import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { directoryYaml, eventually, startGateway, startProvider, type RunningGateway, type TestProvider } from '../helpers/test-kit';
import { getText, parseExposition } from '../helpers/metrics-kit';
import { TestCa, type Issued } from '../helpers/pki';
import { RawConnection, sspLines, statusLines } from '../helpers/raw-conn';

/**
 * Connections already open on the TLS consumer port: a CRL reload
 * closes them (each consumer handshakes again, so a revoked certificate no longer
 * passes), and client-initiated TLS 1.2 renegotiation is refused.
 */
let spine: TestCa;
let good: Issued;
let crlFile: string;
let provider: TestProvider;
let gw: RunningGateway;

beforeAll(async () => {
  spine = TestCa.create('Test Spine CA');
  good = spine.issue('pharmacy.example.nhs.uk');
  crlFile = `${spine.dir}/gateway-crl.pem`;
  copyFileSync(spine.crl(), crlFile);
  const server = spine.issue('gateway.test', { usage: 'server', dns: ['localhost'] });
  provider = await startProvider((req, res) => {
    req.resume();
    setTimeout(
      () => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
        res.end('ok');
      },
      (req.url ?? '').includes('/slow') ? 800 : 0,
    );
  });
  gw = await startGateway(directoryYaml({ metadata: provider.root }), {
    TLS_CERT_FILE: server.cert,
    TLS_KEY_FILE: server.key,
    TLS_CLIENT_CA_FILE: spine.certFile,
    TLS_CRL_FILE: crlFile,
    HEADERS_TIMEOUT_MS: '500',
  });
}, 60_000);
afterAll(async () => {
  // Set-up may have failed (a program not installed): its one line is the report.
  await gw?.stop();
  await provider?.close();
});

const request = (path: string) => `GET /${provider.root}${path} HTTP/1.1\r\nHost: gw\r\n${sspLines().lines}\r\n`;
const tlsOf = (who: Issued) => ({ ca: spine.pem, cert: who.certPem, key: who.keyPem });

async function openAndAsk(who: Issued, path = '/metadata'): Promise<RawConnection> {
  const conn = new RawConnection(gw.proxyPort, tlsOf(who));
  await conn.whenOpen;
  conn.write(request(path));
  return conn;
}

test('after a CRL reload, a connection open with the now-revoked certificate is closed and cannot be reused', async () => {
  const revokeMe = spine.issue('pharmacy.example.nhs.uk');
  const conn = await openAndAsk(revokeMe);
  await conn.until((t) => t.endsWith('ok'));
  expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
  const goodConn = await openAndAsk(good);
  await goodConn.until((t) => t.endsWith('ok'));

  copyFileSync(spine.revoke(revokeMe), crlFile);
  gw.gateway.reloadTls();
  expect(await conn.closes(1000)).toBe(true);
  // A connection whose certificate still passes stays open and keeps being served.
  expect(goodConn.closed).toBe(false);
  goodConn.write(request('/metadata'));
  await goodConn.until((t) => statusLines(t).length === 2 && t.endsWith('ok'));
  expect(statusLines(goodConn.text())).toEqual(['HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\n']);
  goodConn.destroy();
  // A new connection with the revoked certificate fails its handshake (TLS 1.3 reports it after 'secureConnect').
  const again = new RawConnection(gw.proxyPort, tlsOf(revokeMe));
  await again.whenOpen.then(
    () => again.write(request('/metadata')),
    () => {},
  );
  expect(await again.closes(2000)).toBe(true);
  expect(again.text()).not.toContain('HTTP/1.1 200');
  const fresh = await openAndAsk(good);
  await fresh.until((t) => t.endsWith('ok'));
  expect(statusLines(fresh.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
  fresh.destroy();
  const metrics = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
  expect(metrics.get('spine_gateway_connections_retired_total{reason="tls_reload"}')).toBe(1);
});

test('a response in progress at the reload finishes, then its connection closes', async () => {
  const revokeMe = spine.issue('pharmacy.example.nhs.uk');
  const seen = provider.requests.length;
  const conn = await openAndAsk(revokeMe, '/slow');
  // In progress: the provider has the request (and answers it 800 ms later).
  await eventually(() => provider.requests.slice(seen).some((r) => (r.url ?? '').includes('/slow')), 5000, 'the request to reach the provider');
  copyFileSync(spine.revoke(revokeMe), crlFile);
  gw.gateway.reloadTls();
  await conn.until((t) => t.endsWith('ok'), 3000);
  expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
  expect(conn.text().endsWith('\r\n\r\nok')).toBe(true);
  expect(await conn.closes(1000)).toBe(true);
});

test('client-initiated TLS 1.2 renegotiation is refused: the connection is closed, no request is served on it', async () => {
  const seen = provider.requests.length;
  const client = spawn(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${gw.proxyPort}`, '-tls1_2', '-cert', good.cert, '-key', good.key, '-CAfile', spine.certFile],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  client.stdout.on('data', (c: Buffer) => (out += c.toString('latin1')));
  client.stderr.on('data', (c: Buffer) => (out += c.toString('latin1')));
  const exited = new Promise<void>((r) => client.on('exit', () => r()));
  try {
    await eventually(() => out.includes('Verify return code'), 5000, 'the handshake');
    client.stdin.write('R\n');
    await eventually(() => out.includes('RENEGOTIATING'), 5000, 'openssl to ask to renegotiate');
    // The gateway closes the connection, and openssl exits; should it not within a second, a request would show whether it is served.
    await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
    if (client.exitCode === null && client.stdin.writable) client.stdin.write(request('/metadata'));
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
  } finally {
    client.kill();
  }
  expect(out).toContain('RENEGOTIATING');
  expect(out).not.toContain('HTTP/1.1 200');
  expect(provider.requests.length).toBe(seen);
});

test('control: the same openssl client without renegotiating is served', async () => {
  const client = spawn(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${gw.proxyPort}`, '-tls1_2', '-cert', good.cert, '-key', good.key, '-CAfile', spine.certFile],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  client.stdout.on('data', (c: Buffer) => (out += c.toString('latin1')));
  try {
    await eventually(() => out.includes('Verify return code'), 5000, 'the handshake');
    client.stdin.write(request('/metadata'));
    await eventually(() => out.includes('HTTP/1.1 200'), 3000, 'the response');
  } finally {
    client.kill();
  }
});

test('over TLS too, a header timeout answers 408 when a request began, and closes silently when none did', async () => {
  const silent = new RawConnection(gw.proxyPort, tlsOf(good));
  await silent.whenOpen;
  const partial = new RawConnection(gw.proxyPort, tlsOf(good));
  await partial.whenOpen;
  partial.write(`GET /${provider.root}/metadata HTTP/1.1\r\nHost: gw\r\n`);
  expect(await silent.closes(3000)).toBe(true);
  expect(await partial.closes(3000)).toBe(true);
  expect(silent.text()).toBe('');
  expect(statusLines(partial.text())).toEqual(['HTTP/1.1 408 Request Timeout\r\n']);
});

test('after a reload with a CA bundle that no longer holds the issuer, open connections from it close', async () => {
  const rogue = TestCa.create('Another CA');
  const caCopy = `${spine.dir}/client-ca-copy.pem`;
  copyFileSync(spine.certFile, caCopy);
  const server = spine.issue('gateway2.test', { usage: 'server', dns: ['localhost'] });
  const gw2 = await startGateway(directoryYaml({ metadata: provider.root }), {
    TLS_CERT_FILE: server.cert,
    TLS_KEY_FILE: server.key,
    TLS_CLIENT_CA_FILE: caCopy,
  });
  try {
    const conn = new RawConnection(gw2.proxyPort, tlsOf(good));
    await conn.whenOpen;
    conn.write(request('/metadata'));
    await conn.until((t) => t.endsWith('ok'));
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
    gw2.gateway.reloadTls(); // same files: the connection still passes
    await new Promise((r) => setTimeout(r, 300));
    expect(conn.closed).toBe(false);
    copyFileSync(rogue.certFile, caCopy);
    gw2.gateway.reloadTls();
    expect(await conn.closes(1000)).toBe(true);
  } finally {
    await gw2.stop();
  }
});

test('a TCP connection that never starts its TLS handshake is closed at HEADERS_TIMEOUT_MS', async () => {
  const plain = new RawConnection(gw.proxyPort);
  await plain.whenOpen;
  const started = Date.now();
  expect(await plain.closes(3000)).toBe(true);
  expect(Date.now() - started).toBeLessThan(2000);
});

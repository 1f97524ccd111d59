import { X509Certificate } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { connect, createServer, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { certificateSpeaksFor, notePeer, peerOf, type TlsPeer } from '../../../src/tls';
import { TestCa, type Issued } from '../../helpers/pki';

/**
 * What the handshake proved about a consumer (notePeer/peerOf), read from real TLS
 * connections on 127.0.0.1, and whether that certificate speaks for the host names the
 * directory binds to a consumer ASID (certificateSpeaksFor). The names are the subject's
 * CN and the DNS subjectAltNames, compared in lower case and literally: a wildcard in a
 * certificate is a name like any other, never a pattern.
 */
let ca: TestCa;
let server: Server;
let port: number;
/** The peer noted on the server side of each connection, in order of handshake. */
const noted: Array<TlsPeer | null> = [];

beforeAll(async () => {
  ca = TestCa.create('Peer Binding Test CA');
  const serverCert = ca.issue('gateway.test', { usage: 'server' });
  server = createServer({ cert: serverCert.certPem, key: serverCert.keyPem, ca: ca.pem, requestCert: true, rejectUnauthorized: false }, (socket) => {
    notePeer(socket);
    noted.push(peerOf(socket));
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Handshakes with `client` (or none), waits for the server to close, and returns what the server noted. */
async function peerFor(client: Issued | null, options: { maxVersion?: 'TLSv1.2' } = {}): Promise<TlsPeer> {
  const before = noted.length;
  const socket = connect({
    host: '127.0.0.1',
    port,
    ca: ca.pem,
    checkServerIdentity: () => undefined,
    ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    ...options,
  });
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('close', () => resolve());
    socket.resume();
  });
  expect(noted.length).toBe(before + 1);
  const peer = noted[before];
  expect(peer).not.toBeNull();
  return peer!;
}

describe('notePeer / peerOf', () => {
  test('records protocol, cipher and the client certificate: subject, issuer, serial, fingerprint, host names', async () => {
    const client = ca.issue('Pharmacy.Example.NHS.uk', { dns: ['Branch-1.Example.nhs.uk', 'branch-2.example.nhs.uk'] });
    const peer = await peerFor(client);
    const cert = new X509Certificate(client.certPem);
    expect(peer).toEqual({
      protocol: 'TLSv1.3',
      cipher: expect.stringMatching(/^TLS_/),
      subject: 'CN=Pharmacy.Example.NHS.uk',
      issuer: 'CN=Peer Binding Test CA',
      serial: cert.serialNumber,
      sha256: cert.fingerprint256,
      // CN first, then the DNS SANs, all in lower case
      hostNames: ['pharmacy.example.nhs.uk', 'branch-1.example.nhs.uk', 'branch-2.example.nhs.uk'],
    });
  });

  test('the cipher is named in its standard (IANA) form on TLS 1.2 too', async () => {
    const peer = await peerFor(ca.issue('tls12.example'), { maxVersion: 'TLSv1.2' });
    expect(peer.protocol).toBe('TLSv1.2');
    expect(peer.cipher).toMatch(/^TLS_ECDHE_/);
  });

  test('no client certificate: protocol and cipher only, every certificate field empty', async () => {
    const peer = await peerFor(null);
    expect(peer).toEqual({ protocol: 'TLSv1.3', cipher: expect.stringMatching(/^TLS_/), subject: '', issuer: '', serial: '', sha256: '', hostNames: [] });
    expect(certificateSpeaksFor(peer, new Set(['']))).toBe(false);
  });

  test('a multi-field subject: the CN alone names a host, not text that looks like one in another field', async () => {
    const client = ca.issue('real.example', { subject: '/O=CN=forged.example/OU=Pharmacy/CN=real.example' });
    const peer = await peerFor(client);
    expect(peer.subject).toBe('O=CN=forged.example, OU=Pharmacy, CN=real.example');
    expect(peer.hostNames).toEqual(['real.example']);
    expect(certificateSpeaksFor(peer, new Set(['forged.example']))).toBe(false);
    expect(certificateSpeaksFor(peer, new Set(['real.example']))).toBe(true);
  });

  test('only IP and e-mail SANs: no host name beyond the CN', async () => {
    const client = ca.issue('named.example', { subject: '/CN=named.example', san: ['IP:127.0.0.1', 'email:ops@other.example'] });
    expect((await peerFor(client)).hostNames).toEqual(['named.example']);
  });

  test('an object or a plain TCP socket never noted has no peer (plain HTTP)', async () => {
    expect(peerOf({})).toBeNull();
    const plain = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s)).on('error', reject);
    });
    try {
      expect(peerOf(plain)).toBeNull();
    } finally {
      plain.destroy();
    }
  });

  test('each socket keeps its own peer', async () => {
    const a = await peerFor(ca.issue('a.example'));
    const b = await peerFor(ca.issue('b.example'));
    expect(a.hostNames).toEqual(['a.example']);
    expect(b.hostNames).toEqual(['b.example']);
  });
});

describe('certificateSpeaksFor', () => {
  const peer = (hostNames: string[]): TlsPeer => ({
    protocol: 'TLSv1.3',
    cipher: 'TLS_AES_256_GCM_SHA384',
    subject: 'CN=x',
    issuer: 'CN=ca',
    serial: '1000',
    sha256: 'AA',
    hostNames,
  });

  test('no TLS peer (plain HTTP) speaks for nobody', () => {
    expect(certificateSpeaksFor(null, new Set(['pharmacy.example.nhs.uk']))).toBe(false);
  });

  test('by the subject CN or by any DNS SAN', () => {
    const p = peer(['cn.example.nhs.uk', 'san-1.example.nhs.uk', 'san-2.example.nhs.uk']);
    expect(certificateSpeaksFor(p, new Set(['cn.example.nhs.uk']))).toBe(true);
    expect(certificateSpeaksFor(p, new Set(['san-2.example.nhs.uk']))).toBe(true);
    expect(certificateSpeaksFor(p, new Set(['other.example.nhs.uk', 'san-1.example.nhs.uk']))).toBe(true);
    expect(certificateSpeaksFor(p, new Set(['other.example.nhs.uk']))).toBe(false);
    expect(certificateSpeaksFor(p, new Set())).toBe(false);
  });

  test('case: the certificate side is lower-cased by notePeer, the directory side by the directory index', async () => {
    const noted = await peerFor(ca.issue('GP.Example.NHS.UK', { dns: ['ALT.EXAMPLE.NHS.UK'] }));
    expect(certificateSpeaksFor(noted, new Set(['gp.example.nhs.uk']))).toBe(true);
    expect(certificateSpeaksFor(noted, new Set(['alt.example.nhs.uk']))).toBe(true);
    // The comparison itself is exact: a set not lower-cased by the directory matches nothing.
    expect(certificateSpeaksFor(noted, new Set(['GP.Example.NHS.UK']))).toBe(false);
  });

  test('no partial, suffix or prefix match', () => {
    const p = peer(['example.nhs.uk']);
    for (const fqdn of ['gp.example.nhs.uk', 'example.nhs', 'xexample.nhs.uk', 'example.nhs.uk.', ' example.nhs.uk']) {
      expect(certificateSpeaksFor(p, new Set([fqdn]))).toBe(false);
    }
  });

  test('wildcards are literal: *.example.nhs.uk in a certificate speaks for no host under it, only for the same literal entry', async () => {
    const noted = await peerFor(ca.issue('*.example.nhs.uk', { dns: ['*.other.nhs.uk'] }));
    expect(noted.hostNames).toEqual(['*.example.nhs.uk', '*.other.nhs.uk']);
    for (const fqdn of ['gp.example.nhs.uk', 'example.nhs.uk', 'a.b.example.nhs.uk', 'gp.other.nhs.uk']) {
      expect(certificateSpeaksFor(noted, new Set([fqdn]))).toBe(false);
    }
    // A directory entry written as a wildcard is not a pattern either.
    expect(certificateSpeaksFor(peer(['gp.example.nhs.uk']), new Set(['*.example.nhs.uk']))).toBe(false);
    expect(certificateSpeaksFor(noted, new Set(['*.other.nhs.uk']))).toBe(true);
  });
});

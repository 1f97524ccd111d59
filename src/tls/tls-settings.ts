import type { TlsPeer } from '../transaction';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { ConfigError, type Settings } from '../config';

const PEER = Symbol('spine-gateway.tlsPeer');

function read(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/**
 * The consumer port's secure context from TLS_* settings, read from disk now (at start-up
 * and on every reload): certificate and key, the client CA bundle (mutual TLS) and CRL.
 */
export function consumerSecureContext(settings: Settings): SecureContextOptions {
  const options: SecureContextOptions = {
    cert: read('TLS_CERT_FILE', settings.TLS_CERT_FILE!),
    key: read('TLS_KEY_FILE', settings.TLS_KEY_FILE!),
    ciphers: settings.TLS_CIPHERS,
    minVersion: 'TLSv1.2',
  };
  if (settings.TLS_CLIENT_CA_FILE !== undefined) options.ca = read('TLS_CLIENT_CA_FILE', settings.TLS_CLIENT_CA_FILE);
  if (settings.TLS_CRL_FILE !== undefined) options.crl = read('TLS_CRL_FILE', settings.TLS_CRL_FILE);
  return options;
}

/** The provider leg: the CA bundle to verify providers, and the gateway's own client certificate and key. */
export function upstreamTlsOptions(settings: Settings): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  return {
    ...(settings.UPSTREAM_CA_FILE !== undefined ? { ca: read('UPSTREAM_CA_FILE', settings.UPSTREAM_CA_FILE) } : {}),
    ...(settings.UPSTREAM_CERT_FILE !== undefined
      ? { cert: read('UPSTREAM_CERT_FILE', settings.UPSTREAM_CERT_FILE), key: read('UPSTREAM_KEY_FILE', settings.UPSTREAM_KEY_FILE!) }
      : {}),
  };
}

/** Server options: with a client CA, a certificate is required and must verify (chain, dates, CRL) before any byte of HTTP. */
export function consumerTlsServerOptions(settings: Settings): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  const mutual = settings.TLS_CLIENT_CA_FILE !== undefined;
  return { ...consumerSecureContext(settings), requestCert: mutual, rejectUnauthorized: mutual };
}

/**
 * On 'secureConnection': client-initiated renegotiation (TLS 1.2) is refused, the
 * connection closed. Node otherwise allows three in ten minutes (tls.CLIENT_RENEG_LIMIT):
 * each is a full handshake's CPU spent at the client's word, and a renegotiated session
 * could present another certificate than the one the connection was admitted and audited
 * with. TLS 1.3 has no renegotiation.
 */
export function refuseRenegotiation(socket: TLSSocket): void {
  socket.disableRenegotiation();
}

/** On 'secureConnection': records what the handshake proved on the socket. */
export function notePeer(socket: TLSSocket): void {
  const cipher = socket.getCipher();
  const raw = socket.getPeerCertificate(false)?.raw;
  let subject = '';
  let issuer = '';
  let serial = '';
  let sha256 = '';
  let hostNames: string[] = [];
  if (raw !== undefined && raw.length > 0) {
    const cert = new X509Certificate(raw);
    subject = cert.subject.replace(/\n/g, ', ');
    issuer = cert.issuer.replace(/\n/g, ', ');
    serial = cert.serialNumber;
    sha256 = cert.fingerprint256;
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
    const dns = (cert.subjectAltName ?? '')
      .split(', ')
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4));
    hostNames = [...(cn ? [cn] : []), ...dns].map((h) => h.toLowerCase());
  }
  const peer: TlsPeer = {
    protocol: socket.getProtocol() ?? '',
    cipher: cipher?.standardName ?? cipher?.name ?? '',
    subject,
    issuer,
    serial,
    sha256,
    hostNames,
  };
  (socket as TLSSocket & { [PEER]?: TlsPeer })[PEER] = peer;
}

/** The peer noted for this socket, or null on plain HTTP. */
export function peerOf(socket: object): TlsPeer | null {
  return (socket as { [PEER]?: TlsPeer })[PEER] ?? null;
}

/** Whether the connection's client certificate names one of `fqdns` (subject CN or a DNS SAN). */
export function certificateSpeaksFor(peer: TlsPeer | null, fqdns: ReadonlySet<string>): boolean {
  if (peer === null) return false;
  for (const name of peer.hostNames) if (fqdns.has(name)) return true;
  return false;
}

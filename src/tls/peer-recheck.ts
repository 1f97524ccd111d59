import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/**
 * Re-checks the client certificate of a connection that is already open against a newly
 * loaded CA bundle and CRL (TLS reload), as the handshake would check it now: the leaf
 * and its chain within their dates, each signed by the next, ending at a CA in the bundle,
 * and the leaf's serial not on a CRL from its issuer (OpenSSL's CRL check covers the leaf
 * only, and so does this). Anything it cannot read counts as not passing: the connection
 * is closed and the consumer simply handshakes again.
 *
 * The CRL is read with a minimal DER walk (Node has no CRL parser). Its signature is not
 * checked here: the file is the operator's, and a CRL can only make more connections close.
 */
export interface TrustSnapshot {
  readonly cas: readonly X509Certificate[];
  /** issuer Name (DER, hex) -> revoked serial numbers (hex, no leading zeros, upper case). */
  readonly revoked: ReadonlyMap<string, ReadonlySet<string>>;
}

interface Tlv {
  tag: number;
  /** First content byte. */
  start: number;
  /** One past the last content byte. */
  end: number;
  /** First header byte. */
  from: number;
}

function tlv(der: Buffer, at: number): Tlv {
  const tag = der[at];
  let length = der[at + 1];
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i];
    start += bytes;
  }
  const end = start + length;
  if (tag === undefined || end > der.length) throw new Error('truncated DER');
  return { tag, start, end, from: at };
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const child = tlv(der, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** An INTEGER's value as upper-case hex without leading zeros (X509Certificate.serialNumber's form). */
function integerHex(der: Buffer, node: Tlv): string {
  const hex = der
    .subarray(node.start, node.end)
    .toString('hex')
    .toUpperCase()
    .replace(/^(00)+(?=.)/, '');
  return hex === '' ? '0' : hex;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;

/** Issuer Name (DER hex) of a certificate. */
function certificateIssuer(der: Buffer): string {
  const tbs = children(der, tlv(der, 0))[0];
  const fields = children(der, tbs);
  const i = fields[0].tag === 0xa0 ? 1 : 0; // [0] version
  const issuer = fields[i + 2];
  return der.subarray(issuer.from, issuer.end).toString('hex');
}

/** Revoked serials of each CRL in a PEM or DER file, by issuer. */
export function readCrls(file: Buffer): Map<string, Set<string>> {
  const text = file.toString('latin1');
  const blocks = text.includes('-----BEGIN X509 CRL-----')
    ? [...text.matchAll(/-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g)].map((m) => Buffer.from(m[1].replace(/\s+/g, ''), 'base64'))
    : [file];
  const revoked = new Map<string, Set<string>>();
  for (const der of blocks) {
    const tbs = children(der, tlv(der, 0))[0];
    const fields = children(der, tbs);
    let i = fields[0].tag === INTEGER ? 1 : 0; // version
    const issuer = fields[i + 1];
    const key = der.subarray(issuer.from, issuer.end).toString('hex');
    i += 3; // signature, issuer, thisUpdate
    if (i < fields.length && (fields[i].tag === 0x17 || fields[i].tag === 0x18)) i++; // nextUpdate
    const serials = revoked.get(key) ?? new Set<string>();
    if (i < fields.length && fields[i].tag === SEQUENCE) {
      for (const entry of children(der, fields[i])) serials.add(integerHex(der, children(der, entry)[0]));
    }
    revoked.set(key, serials);
  }
  return revoked;
}

/** The CA bundle's certificates. */
export function readCertificates(file: Buffer): X509Certificate[] {
  const text = file.toString('latin1');
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
}

export function trustSnapshot(
  ca: Buffer | string | Array<Buffer | string> | undefined,
  crl: Buffer | string | Array<Buffer | string> | undefined,
): TrustSnapshot {
  const asBuffer = (v: Buffer | string | Array<Buffer | string>) => (Array.isArray(v) ? Buffer.concat(v.map((x) => Buffer.from(x))) : Buffer.from(v));
  return {
    cas: ca === undefined ? [] : readCertificates(asBuffer(ca)),
    revoked: crl === undefined ? new Map() : readCrls(asBuffer(crl)),
  };
}

function withinDates(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
}

/** Whether the certificate this open connection was admitted with still passes under `trust`. */
export function peerStillPasses(socket: TLSSocket, trust: TrustSnapshot, now = Date.now()): boolean {
  try {
    const leaf = socket.getPeerX509Certificate();
    if (leaf === undefined) return true; // no client certificate: nothing was admitted on one
    // Intermediates the client presented, besides the bundle, may sit between leaf and CA.
    const presented: X509Certificate[] = [];
    let node = socket.getPeerCertificate(true)?.issuerCertificate;
    for (let depth = 0; node && node.raw && depth < 8; depth++) {
      presented.push(new X509Certificate(node.raw));
      if (node.issuerCertificate === node) break;
      node = node.issuerCertificate;
    }
    const serials = trust.revoked.get(certificateIssuer(leaf.raw));
    if (serials !== undefined && serials.has(leaf.serialNumber.toUpperCase().replace(/^(00)+(?=.)/, ''))) return false;
    let cert = leaf;
    for (let depth = 0; depth < 8; depth++) {
      if (!withinDates(cert, now)) return false;
      const anchor = trust.cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
      if (anchor !== undefined) return withinDates(anchor, now);
      const next = presented.find((c) => c !== cert && cert.checkIssued(c) && cert.verify(c.publicKey) && !c.fingerprint256.startsWith(cert.fingerprint256));
      if (next === undefined) return false;
      cert = next;
    }
    return false;
  } catch {
    return false;
  }
}

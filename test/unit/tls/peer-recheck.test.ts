import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { readCrls } from '../../../src/tls/peer-recheck';
import { TestCa } from '../../helpers/pki';

describe('readCrls', () => {
  test('finds the revoked serials of an openssl CRL, by issuer, in PEM and DER', () => {
    const ca = TestCa.create('CRL Test CA');
    const a = ca.issue('a.example');
    const b = ca.issue('b.example');
    const kept = ca.issue('c.example');
    ca.revoke(a);
    const pem = readFileSync(ca.revoke(b));
    const serial = (file: string) => new X509Certificate(readFileSync(file)).serialNumber.toUpperCase();
    for (const file of [pem, execFileSync('openssl', ['crl', '-outform', 'DER'], { input: pem })]) {
      const revoked = readCrls(file);
      expect(revoked.size).toBe(1);
      const serials = [...revoked.values()][0];
      expect(serials.has(serial(a.cert))).toBe(true);
      expect(serials.has(serial(b.cert))).toBe(true);
      expect(serials.has(serial(kept.cert))).toBe(false);
    }
  });

  test('an empty CRL revokes nothing', () => {
    const ca = TestCa.create('Empty CRL CA');
    const revoked = readCrls(readFileSync(ca.crl()));
    expect([...revoked.values()][0].size).toBe(0);
  });

  test('garbage throws (the caller then closes every connection)', () => {
    expect(() => readCrls(Buffer.from('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'))).toThrow();
  });
});

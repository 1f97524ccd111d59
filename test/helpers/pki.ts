import { execFileSync } from 'node:child_process';
import { requireProgram } from './system-programs';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './test-kit';

/**
 * A small certificate authority made by the test with the openssl CLI (`openssl ca`, so
 * certificates can carry past validity dates and be revoked into a CRL). Files are PEM.
 */
export interface Issued {
  cert: string;
  key: string;
  certPem: Buffer;
  keyPem: Buffer;
}

export class TestCa {
  readonly certFile: string;
  private constructor(
    readonly dir: string,
    readonly name: string,
  ) {
    this.certFile = join(dir, 'ca.pem');
  }

  get pem(): Buffer {
    return readFileSync(this.certFile);
  }

  static create(name: string): TestCa {
    const dir = tempDir('pki-');
    const ca = new TestCa(dir, name);
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    writeFileSync(
      join(dir, 'ca.cnf'),
      `[ca]\ndefault_ca = test\n[test]\ndir = ${dir}\ndatabase = ${dir}/index.txt\nserial = ${dir}/serial\nnew_certs_dir = ${dir}\n` +
        `certificate = ${dir}/ca.pem\nprivate_key = ${dir}/ca.key\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\nunique_subject = no\ndefault_crl_days = 1\n` +
        `[any]\ncommonName = supplied\n`,
    );
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', ca.certFile, '-days', '2', '-subj', `/CN=${name}`]);
    return ca;
  }

  /**
   * Issues a certificate. `dns` become subjectAltName DNS entries (plus IP 127.0.0.1 for
   * servers); `validity` as openssl dates (YYYYMMDDHHMMSSZ) for expired ones; `subject`
   * (openssl -subj form, with a CN) replaces the plain `/CN=<cn>`, its fields kept as given;
   * `san` adds other subjectAltName entries as written (`IP:...`, `email:...`).
   */
  issue(
    cn: string,
    options: { dns?: string[]; usage?: 'client' | 'server'; validity?: { start: string; end: string }; subject?: string; san?: string[] } = {},
  ): Issued {
    const base = join(this.dir, `${cn.replace(/[^a-z0-9.-]/gi, '_')}-${Math.random().toString(36).slice(2, 8)}`);
    const usage = options.usage ?? 'client';
    const san = [...(options.dns ?? []).map((d) => `DNS:${d}`), ...(usage === 'server' ? ['IP:127.0.0.1'] : []), ...(options.san ?? [])];
    const ext = `${base}.ext`;
    writeFileSync(
      ext,
      `[v3]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = ${usage === 'server' ? 'serverAuth' : 'clientAuth'}\n${san.length ? `subjectAltName = ${san.join(',')}\n` : ''}`,
    );
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', options.subject ?? `/CN=${cn}`]);
    const dates = options.validity ? ['-startdate', options.validity.start, '-enddate', options.validity.end] : ['-days', '1'];
    run([
      'ca',
      '-batch',
      '-notext',
      '-config',
      join(this.dir, 'ca.cnf'),
      '-in',
      `${base}.csr`,
      '-out',
      `${base}.pem`,
      '-extfile',
      ext,
      '-extensions',
      'v3',
      ...dates,
      ...(options.subject ? ['-preserveDN'] : []),
    ]);
    return { cert: `${base}.pem`, key: `${base}.key`, certPem: readFileSync(`${base}.pem`), keyPem: readFileSync(`${base}.key`) };
  }

  /** Revokes `issued` and writes a fresh CRL; returns the CRL file. */
  revoke(issued: Issued): string {
    run(['ca', '-config', join(this.dir, 'ca.cnf'), '-revoke', issued.cert]);
    return this.crl();
  }

  crl(): string {
    const file = join(this.dir, 'crl.pem');
    run(['ca', '-config', join(this.dir, 'ca.cnf'), '-gencrl', '-out', file]);
    return file;
  }
}

function run(args: string[]): void {
  requireProgram('openssl');
  execFileSync('openssl', args, { stdio: 'pipe' });
}

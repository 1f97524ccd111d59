import { closeSync, constants, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { generateKeyPairSync, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { GatewayError } from '../errors';
import { keyId } from './seal-format';

/** The key that signs the audit trail's seals: its private half, and what a verifier needs. */
export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public key as SPKI PEM (what GET /audit/public-key serves). */
  readonly publicKeyPem: string;
  /** keyId(publicKey): first 16 hex digits of the SHA-256 of its DER form; every seal names it. */
  readonly keyId: string;
  /** Where it came from: AUDIT_SIGNING_KEY_FILE, or the file generated under DATA_DIR. */
  readonly path: string;
  /** True when this start generated it. */
  readonly generated: boolean;
}

/** The signing key cannot be used: start-up stops with this one line. */
export class SigningKeyError extends GatewayError {
  declare readonly code: 'GW_ERR_SIGNING_KEY';
  constructor(message: string, options?: { cause?: unknown }) {
    super('GW_ERR_SIGNING_KEY', message, options);
  }
}

export const GENERATED_KEY_FILE = 'audit-signing-key.pem';

/**
 * The seal signing key: AUDIT_SIGNING_KEY_FILE when set (a PEM Ed25519 private key, PKCS#8;
 * anything else stops start-up), otherwise `DATA_DIR/audit-signing-key.pem`, generated on
 * the first start (created exclusively with mode 0600 and fsync'd, file and directory) and
 * loaded by every later one. Never logged, never served: only its public half leaves.
 */
export function loadSigningKey(keyFile: string | undefined, dataDir: string): SigningKey {
  if (keyFile !== undefined) return fromFile(keyFile, 'AUDIT_SIGNING_KEY_FILE', false);
  const path = join(dataDir, GENERATED_KEY_FILE);
  if (existsSync(path)) return fromFile(path, `the generated key ${path}`, false);
  // Written whole under a temporary name, then linked into place: link() fails if the name
  // exists (exclusive), and a crash mid-write leaves only the temporary file, never half a key.
  const temporary = `${path}.${process.pid}.tmp`;
  const { privateKey } = generateKeyPairSync('ed25519');
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      writeSync(fd, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return fromFile(path, `the generated key ${path}`, false);
      throw err;
    }
  } catch (err) {
    if (err instanceof SigningKeyError) throw err;
    throw new SigningKeyError(`cannot create the audit signing key ${path} (${(err as NodeJS.ErrnoException).code ?? 'EIO'}): ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    rmSync(temporary, { force: true });
  }
  syncDir(dirname(path));
  return describe(privateKey, path, true);
}

function fromFile(path: string, what: string, generated: boolean): SigningKey {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (err) {
    throw new SigningKeyError(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'EIO'})`, { cause: err });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    // Never the file's content in the message: it may be a key of some other use.
    throw new SigningKeyError(`${what}: ${path} is not a PEM private key (an Ed25519 private key is needed: openssl genpkey -algorithm ed25519)`);
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new SigningKeyError(
      `${what}: ${path} holds an ${key.asymmetricKeyType ?? 'unknown'} key; the audit trail is signed with Ed25519 (openssl genpkey -algorithm ed25519)`,
    );
  return describe(key, path, generated);
}

function describe(privateKey: KeyObject, path: string, generated: boolean): SigningKey {
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    keyId: keyId(publicKey),
    path,
    generated,
  };
}

/** Makes a new file's directory entry durable. */
export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* some file systems refuse fsync on a directory; the file itself is synced */
  }
}

import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { keyId } from './seal-format';
import { SigningKeyError } from './signing-key';

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/**
 * AUDIT_VERIFY_KEYS_FILE: the public keys of other gateways whose chains this gateway's
 * verify should trust besides its own (gateways sharing one ClickHouse, each with its own
 * key), as concatenated SPKI PEM blocks (what GET /audit/public-key?format=pem serves).
 * Anything but Ed25519 public keys, or a file with none, stops start-up with one line.
 */
export function loadVerifyKeys(file: string | undefined): KeyObject[] {
  if (file === undefined) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SigningKeyError(`AUDIT_VERIFY_KEYS_FILE ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new SigningKeyError(`AUDIT_VERIFY_KEYS_FILE ${file}: holds no PEM public key (-----BEGIN PUBLIC KEY-----)`);
  return blocks.map((pem, i) => {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (err) {
      throw new SigningKeyError(`AUDIT_VERIFY_KEYS_FILE ${file}: key ${i + 1} is not a readable public key`, { cause: err });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`AUDIT_VERIFY_KEYS_FILE ${file}: key ${i + 1} is ${key.asymmetricKeyType}, not Ed25519`);
    return key;
  });
}

/** The keys verify trusts, by key id: the gateway's own, then the others. */
export function trustedKeys(own: KeyObject, others: readonly KeyObject[] = []): Map<string, KeyObject> {
  const map = new Map<string, KeyObject>();
  for (const k of [own, ...others]) if (!map.has(keyId(k))) map.set(keyId(k), k);
  return map;
}

import { createHash, createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto';

/**
 * A seal: the signed digest of one seal period of one chain (one gateway instance's
 * trail). Kept apart from the rows: the `audit_seals` table, the local append-only file
 * `DATA_DIR/audit-seals.ndjson`, and one log line per seal.
 *
 * A period holds the final records given sequence numbers `first_seq`..`last_seq` while
 * it was open ([period_start, period_end)); an empty period has `last_seq = first_seq - 1`.
 * `dropped` lists the sequence numbers of records the gateway itself lost (never written:
 * the disk failed past the hold, see README), so that they are accounted for, not missing.
 * `records_root` is the SHA-256 of the period's stored records' hashes (32 bytes each) in
 * sequence order. `previous_digest` chains the periods (64 zeros for a chain's first seal).
 */
export interface SealBody {
  readonly chain: string;
  readonly instance: string;
  /** ISO 8601 UTC with milliseconds. */
  readonly period_start: string;
  readonly period_end: string;
  readonly first_seq: number;
  readonly last_seq: number;
  readonly records: number;
  readonly dropped: readonly number[];
  readonly records_root: string;
  readonly previous_digest: string;
  readonly sealed_at: string;
  readonly key_id: string;
}

export interface Seal extends SealBody {
  /** SHA-256 (hex) of sealText(body). */
  readonly digest: string;
  /** Ed25519 signature of the digest's 32 bytes, base64. */
  readonly signature: string;
}

export const SEAL_FORMAT = 'spine-audit-seal/1';
export const GENESIS_DIGEST = '0'.repeat(64);
/** records_root of a period with no stored record. */
export const EMPTY_ROOT = hash('sha256', '', 'hex');

const FIELDS: readonly (keyof SealBody)[] = [
  'chain',
  'instance',
  'period_start',
  'period_end',
  'first_seq',
  'last_seq',
  'records',
  'dropped',
  'records_root',
  'previous_digest',
  'sealed_at',
  'key_id',
];

/** The text a seal's digest covers: the format's name, then `field=value` lines in a fixed order. */
export function sealText(body: SealBody): string {
  let out = `${SEAL_FORMAT}\n`;
  for (const f of FIELDS) {
    const v = body[f];
    out += `${f}=${Array.isArray(v) ? v.join(',') : String(v)}\n`;
  }
  return out;
}

/** records_root: SHA-256 over the record hashes (hex in, 32 bytes each hashed) in sequence order. */
export function recordsRoot(recordHashes: Iterable<string>): string {
  const h = createHash('sha256');
  for (const r of recordHashes) h.update(Buffer.from(r, 'hex'));
  return h.digest('hex');
}

/** Digests and signs a seal body with the Ed25519 private key. */
export function signSeal(body: SealBody, privateKey: KeyObject): Seal {
  const digest = hash('sha256', sealText(body), 'hex');
  const signature = sign(null, Buffer.from(digest, 'hex'), privateKey).toString('base64');
  return { ...body, digest, signature };
}

/** `ok`, or why the seal is not what its signer wrote: its digest does not match its body, or the signature is not the key's. */
export function checkSeal(seal: Seal, publicKey: KeyObject): 'ok' | 'digest_mismatch' | 'bad_signature' {
  if (hash('sha256', sealText(seal), 'hex') !== seal.digest) return 'digest_mismatch';
  try {
    return verify(null, Buffer.from(seal.digest, 'hex'), publicKey, Buffer.from(seal.signature, 'base64')) ? 'ok' : 'bad_signature';
  } catch {
    return 'bad_signature'; // a signature of the wrong length, or not base64
  }
}

/** A public key's id: the first 16 hex digits of the SHA-256 of its DER (SPKI) form. */
export function keyId(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return hash('sha256', publicKey.export({ type: 'spki', format: 'der' }), 'hex').slice(0, 16);
}

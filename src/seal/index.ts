export { CANONICAL_V1, canonicalText, recordHash, recordHashSql, type CanonicalKind, type CanonicalValues } from './canonical';
export { EMPTY_ROOT, GENESIS_DIGEST, SEAL_FORMAT, checkSeal, keyId, recordsRoot, sealText, signSeal, type Seal, type SealBody } from './seal-format';
export { GENERATED_KEY_FILE, SigningKeyError, loadSigningKey, type SigningKey } from './signing-key';
export { SEAL_FILE, SealFile, parseSeal } from './seal-file';
export { Sealer, type RecoveredRecord, type SealStamp, type SealStore, type SealerOptions } from './sealer';

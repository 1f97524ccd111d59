export {
  CANONICAL_FORM,
  CANONICAL_FORMS,
  CANONICAL_V1,
  CANONICAL_V2,
  canonicalColumns,
  canonicalText,
  listText,
  recordHash,
  recordHashSql,
  type CanonicalKind,
  type CanonicalValues,
} from './canonical';
export { EMPTY_ROOT, GENESIS_DIGEST, SEAL_FORMAT, checkSeal, keyId, recordsRoot, sealText, signSeal, type Seal, type SealBody } from './seal-format';
export {
  classifyRows,
  judgePeriods,
  type BreakKind,
  type DrillRow,
  type Judgement,
  type ChainJudgement,
  type PeriodRows,
  type StoredSeal,
  type Suspect,
  type VerifyBreak,
  type VerifyInput,
} from './verify-periods';
export { loadVerifyKeys, trustedKeys } from './verify-keys';
export { GENERATED_KEY_FILE, SigningKeyError, loadSigningKey, type SigningKey } from './signing-key';
export { SEAL_FILE, SealFile, parseSeal } from './seal-file';
export { Sealer, type RecoveredRecord, type SealStamp, type SealStore, type SealerOptions } from './sealer';

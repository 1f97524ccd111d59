export { Transaction, NO_CLAIMS, NO_FINDINGS, OUTCOMES, type Outcome, type TransactionClaims, type TlsPeer } from './transaction';

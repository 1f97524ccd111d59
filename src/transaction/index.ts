export { Transaction, NO_CLAIMS, OUTCOMES, type Outcome, type TransactionClaims, type TlsPeer } from './transaction';

export { Transaction, NO_CLAIMS, type Outcome, type TransactionClaims } from './transaction';

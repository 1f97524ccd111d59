export { Transaction, NO_CLAIMS, OUTCOMES, type Outcome, type TransactionClaims } from './transaction';

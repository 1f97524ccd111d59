export { Transaction, type Outcome } from './transaction';

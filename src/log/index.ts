export { createLogger, type Logger } from './logger';
export { createTransactionLog } from './transaction-line';

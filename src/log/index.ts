export { createLogger, type Logger } from './logger';
export { logTransaction } from './transaction-line';

export { GatewayMetrics, type TransactionFacts, type AuditStats } from './gateway-metrics';

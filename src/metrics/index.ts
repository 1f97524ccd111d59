export { GatewayMetrics, type TransactionFacts } from './gateway-metrics';

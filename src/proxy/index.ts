export { ProxyEngine, type ProxyEngineOptions, type RefusalWriter, type TransactionDone } from './proxy-engine';
export { headersForProvider, headersForConsumer, forwardedValue, connectionTokens } from './hop-by-hop';
export type { Exchange } from './exchange';

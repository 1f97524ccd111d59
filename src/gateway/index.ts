export { createProxyHandler, type ProxyHandlerDeps } from './proxy-handler';
export { createClientErrorHandler } from './client-error-handler';
export { createRefusalWriter } from './refusal-writer';
export { ownResponseHeaders } from './own-headers';

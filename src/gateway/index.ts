export { createProxyHandler, createClientErrorHandler, type ProxyHandlerDeps } from './proxy-handler';
export { createRefusalWriter } from './refusal-writer';
export { ownResponseHeaders } from './own-headers';

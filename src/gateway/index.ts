export { createProxyHandler, type ProxyHandlerDeps } from './proxy-handler';
export { createClientErrorHandler } from './client-error-handler';
export { createUpgradeRefuser } from './upgrade-handler';
export { createRefusalWriter } from './refusal-writer';
export { ownResponseHeaders } from './own-headers';
export { ConsumerConnections, defaultMaxConnections, openFilesLimit, DESCRIPTOR_RESERVE } from './connections';
export { closeIfNoRequestWithin, waitForTurn } from './connection-state';
export { ProxyServer, type ProxyServerOptions, type ProxyServerSettings } from './proxy-server';
export { routeThroughDirectory } from './request-checks';

export { certificateSpeaksFor, consumerSecureContext, consumerTlsServerOptions, notePeer, peerOf, upstreamTlsOptions, type TlsPeer } from './tls-settings';

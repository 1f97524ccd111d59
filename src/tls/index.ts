export { certificateSpeaksFor, consumerSecureContext, consumerTlsServerOptions, notePeer, peerOf, refuseRenegotiation, upstreamTlsOptions, type TlsPeer } from './tls-settings';
export { peerStillPasses, trustSnapshot, type TrustSnapshot } from './peer-recheck';

export {
  certificateSpeaksFor,
  consumerSecureContext,
  consumerTlsServerOptions,
  notePeer,
  peerOf,
  refuseRenegotiation,
  upstreamTlsOptions,
} from './tls-settings';
export type { TlsPeer } from '../transaction';
export { peerStillPasses, trustSnapshot, type TrustSnapshot } from './peer-recheck';

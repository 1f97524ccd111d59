export {
  STORE_SOCKET,
  LOG_LEVELS,
  wireWatermark,
  fromWireWatermark,
  type ToStore,
  type FromStore,
  type SealCall,
  type LogLevel,
  type ShipperWork,
  type WirePosition,
  type LaneRef,
} from './store-protocol';
export { ipcChannel, channelPair, type Channel } from './channel';
export { RpcClient, StoreCallError } from './rpc';

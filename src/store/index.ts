export { runStoreService, type StoreService } from './store-service';
export { serveOnSocket } from './socket-server';

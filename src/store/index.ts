export { runStoreService, type StoreService } from './store-service';

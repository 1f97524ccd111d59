export { StoreSupervisor, STORE_STOP_TIMEOUT_MS, type StoreProcess, type StoreState, type SupervisorOptions } from './store-supervisor';
export { forkStore, storeEntry } from './fork-store';
export { inlineStore, type RunStore } from './inline-store';
export { reapStaleStore, recordStorePid, STORE_PID_FILE } from './stale-store';

import { channelPair, type Channel, type FromStore, type ToStore } from '../ipc';
import type { StoreProcess } from './store-supervisor';

/** What the in-process seam runs: runStoreService of src/store, loaded by the caller with a dynamic import. */
export type RunStore = (channel: Channel<FromStore, ToStore>) => { stopped: Promise<void> };

/**
 * The test seam (buildGateway(..., { store: 'inline' })): the same store service in this
 * process, over an in-memory channel carrying the same messages, JSON-cloned. kill() ends
 * it as a lost channel would (the service stops and "exits").
 */
export function inlineStore(run: RunStore, onService?: (service: ReturnType<RunStore>) => void): StoreProcess {
  const { a, b } = channelPair<ToStore, FromStore>();
  const service = run(b);
  onService?.(service);
  return {
    pid: process.pid,
    channel: a,
    exited: service.stopped.then(() => ({ code: 0, signal: null })),
    kill: () => a.close(),
  };
}

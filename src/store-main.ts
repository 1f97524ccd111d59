import { ipcChannel, type FromStore, type ToStore } from './ipc';
import { runStoreService } from './store';

/**
 * The audit store process (README: Processes), forked by the gateway's supervisor with an
 * IPC channel: everything it does comes from that channel, and it exits when the channel
 * closes, so it never outlives the gateway. Run alone, it has nothing to do and says so.
 */
if (typeof process.send !== 'function') {
  process.stderr.write('spine-gateway audit store: started without an IPC channel; the gateway starts it (npm start)\n');
  process.exit(2);
}
// Signals are the gateway's to act on: Ctrl-C in a terminal reaches the whole process group,
// and the store then stops when the gateway tells it (after its batch), not mid-insert.
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
// SIGTERM (a service manager stopping the whole group): stop as asked, after the current batch.
process.on('SIGTERM', () => void service.stop());
const service = runStoreService(ipcChannel<FromStore, ToStore>(process));
// The gateway is gone: the service stops (after its batch); if that hangs, this process still ends.
process.on('disconnect', () => setTimeout(() => process.exit(1), 10_000).unref());
void service.stopped.then(() => {
  // Let the last messages (stopped, log lines) leave before the channel goes.
  setImmediate(() => process.exit(0));
});

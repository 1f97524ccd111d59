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
// Signals are the gateway's to act on: Ctrl-C in a terminal, or a service manager's SIGTERM to the
// whole group, reach this process too; it stops when the gateway tells it (after its batch, once
// the gateway has sealed), not at once, and not to be restarted mid-shutdown. SIGKILL still ends it.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
const service = runStoreService(ipcChannel<FromStore, ToStore>(process));
// The gateway is gone (killed: a clean stop says `stop` first): end now, as if killed with it. A
// gateway started again on this DATA_DIR must not find this process still shipping from its spool;
// everything here is on disk already and shipping from the checkpoint is idempotent.
process.on('disconnect', () => process.exit(0));
void service.stopped.then(() => {
  // Let the last messages (stopped, log lines) leave before the channel goes.
  setImmediate(() => process.exit(0));
});

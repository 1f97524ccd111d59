import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ipcChannel, type FromStore, type ToStore } from '../ipc';
import type { StoreProcess } from './store-supervisor';

/**
 * The store process's entry: dist/src/store-main.js beside this compiled file; under
 * ts-jest (this file run from src/) the built one in REPO/dist (npm test builds first).
 */
export function storeEntry(): string {
  const compiled = __filename.endsWith('.js');
  return compiled ? join(__dirname, '..', 'store-main.js') : join(__dirname, '..', '..', 'dist', 'src', 'store-main.js');
}

/**
 * Forks the audit store process with an IPC channel (JSON); its stdout/stderr are the gateway's.
 * `dataDir` goes on its command line (the store ignores it): reapStaleStore tells this
 * DATA_DIR's store from another gateway's by it.
 */
export function forkStore(entry = storeEntry(), dataDir?: string): StoreProcess {
  if (!existsSync(entry)) throw Object.assign(new Error(`${entry} is missing (run npm run build)`), { code: 'ENOENT' });
  const child = fork(entry, dataDir === undefined ? [] : [resolve(dataDir)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
    env: process.env,
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // A fork that never ran ('error' without 'exit').
    child.once('error', () => {
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) resolve({ code: null, signal: null });
    });
  });
  return {
    pid: child.pid,
    channel: ipcChannel<ToStore, FromStore>(child),
    exited,
    kill(signal) {
      try {
        child.kill(signal);
      } catch {
        /* gone already */
      }
    },
  };
}

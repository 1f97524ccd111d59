import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log';

/** DATA_DIR/store.pid: the running store process's pid, so that the next gateway can end one its killed predecessor left. */
export const STORE_PID_FILE = 'store.pid';

function isStore(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('store-main');
  } catch {
    return false; // gone, or not Linux (nothing to reap then)
  }
}

export function recordStorePid(file: string, pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    writeFileSync(file, `${pid}\n`);
  } catch {
    // A DATA_DIR that cannot take it: the store still exits by itself when its gateway goes.
  }
}

/**
 * Before the first fork: a store process that a killed gateway left behind (it exits when
 * its channel closes, but a store busy in the engine may take a moment to notice) is
 * SIGKILLed and waited for (up to `ms`), so two stores never share the spool, the engine's
 * files or the socket. Only a process whose command line is the store's entry is touched.
 */
export async function reapStaleStore(file: string, log: Logger, ms = 5000): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid > 1 && pid !== process.pid && isStore(pid)) {
    log.warn({ store_pid: pid }, 'audit store process left by the previous gateway: killed (SIGKILL) before starting a new one');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
    const until = Date.now() + ms;
    while (isStore(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }
  try {
    unlinkSync(file);
  } catch {
    /* none */
  }
}

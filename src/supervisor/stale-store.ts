import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../log';

/** DATA_DIR/store.pid: the running store process's pid, so that the next gateway can end one its killed predecessor left. */
export const STORE_PID_FILE = 'store.pid';

/**
 * Whether `pid` is the store process of the DATA_DIR `dataDir`: its entry (store-main) and that
 * DATA_DIR as its argument (forkStore puts it there). The pid in store.pid may since have gone
 * to another process, another gateway's store among them (two DATA_DIRs on one host).
 */
function isStore(pid: number, dataDir: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.some((a) => /store-main\.[jt]s$/.test(a)) && args.includes(resolve(dataDir));
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
 * files or the socket. Only a process whose command line is the store's entry with this
 * DATA_DIR (the folder of `file`) is touched.
 */
export async function reapStaleStore(file: string, log: Logger, ms = 5000): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return;
  }
  const dataDir = dirname(file);
  if (Number.isInteger(pid) && pid > 1 && pid !== process.pid && isStore(pid, dataDir)) {
    log.warn({ store_pid: pid }, 'audit store process left by the previous gateway: killed (SIGKILL) before starting a new one');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
    const until = Date.now() + ms;
    while (isStore(pid, dataDir) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }
  try {
    unlinkSync(file);
  } catch {
    /* none */
  }
}

import type { Channel, FromStore, ToStore } from '../ipc';
import type { Logger } from '../log';

/** A running audit store: a forked child, or the in-process seam. */
export interface StoreProcess {
  readonly pid: number | undefined;
  readonly channel: Channel<ToStore, FromStore>;
  /** Resolves once, when it has gone (whatever the cause). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

export interface SupervisorOptions {
  launch(): StoreProcess;
  log: Logger;
  /** The init message for each (re)start: settings, public key, the durable end and watermark now. */
  init(): ToStore;
  onMessage(message: FromStore): void;
  /** The store came up (true) or went (false): the gauge, and failing the calls under way. */
  onUp(up: boolean): void;
  onRestart(): void;
  /** First restart delay, doubling per exit up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A store that stayed up this long restarts at minBackoffMs again. */
  stableMs?: number;
  /** At stop: how long the store may take to finish its batch and close before SIGKILL. */
  stopTimeoutMs?: number;
}

export type StoreState = 'starting' | 'up' | 'down' | 'stopped';

/** At stop, the store's time to finish its batch before SIGKILL (unless stopTimeoutMs says otherwise): part of what a SIGTERM may take (deploy/kubernetes). */
export const STORE_STOP_TIMEOUT_MS = 10_000;

/**
 * Keeps the audit store process running (README: Processes): starts it, restarts it when
 * it exits for any reason with capped exponential backoff (one log line per exit and per
 * start, counted), and stops it at shutdown (asked first, SIGKILL after a bound). A store
 * that dies, a send on a closed channel, EPIPE: none of it throws here.
 */
export class StoreSupervisor {
  private current: StoreProcess | null = null;
  private startedAt = 0;
  private delayMs: number;
  private timer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  restarts = 0;
  /** When the store went down (epoch ms), 0 while up. */
  downSince = 0;
  nextStartAt = 0;
  private readonly min: number;
  private readonly max: number;
  private readonly stable: number;

  constructor(private readonly options: SupervisorOptions) {
    this.min = options.minBackoffMs ?? 100;
    this.max = options.maxBackoffMs ?? 10_000;
    this.stable = options.stableMs ?? 30_000;
    this.delayMs = this.min;
  }

  get state(): StoreState {
    if (this.stopping !== null) return 'stopped';
    if (this.current !== null) return 'up';
    return this.timer !== null ? 'down' : 'starting';
  }

  get pid(): number | undefined {
    return this.current?.pid;
  }

  start(): void {
    if (this.current !== null || this.stopping !== null) return;
    this.launch();
  }

  /** To the store now; false (and dropped) while there is none. */
  send(message: ToStore): boolean {
    return this.current?.channel.send(message) ?? false;
  }

  private launch(): void {
    this.timer = null;
    let proc: StoreProcess;
    try {
      proc = this.options.launch();
    } catch (err) {
      // fork itself failed (EAGAIN, EMFILE): treated as an exit, tried again after the backoff.
      this.options.log.error({ code: (err as NodeJS.ErrnoException).code ?? 'ERROR' }, `audit store process could not be started: ${(err as Error).message}`);
      this.scheduleRestart(null, null);
      return;
    }
    this.current = proc;
    this.startedAt = Date.now();
    this.downSince = 0;
    const restart = this.restarts > 0;
    this.options.log.info({ store_pid: proc.pid, restarts: this.restarts }, restart ? 'audit store process restarted' : 'audit store process started');
    this.options.log.flush();
    proc.channel.onMessage((m) => {
      // Once a newer store runs (its init counted the spool anew), an older one's late messages count no more
      // (a late `released` would be counted twice); its last log lines still go to the log. Before that they
      // count as ever (a late `shipped` keeps the pending count right).
      if (this.current !== null && this.current !== proc && m.t !== 'log') return;
      try {
        this.options.onMessage(m);
      } catch (err) {
        this.options.log.error(`audit store: a message from the store could not be handled: ${(err as Error).message}`);
      }
    });
    proc.channel.send(this.options.init());
    this.options.onUp(true);
    void proc.exited.then(({ code, signal }) => this.exited(proc, code, signal));
  }

  private exited(proc: StoreProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.current !== proc) return;
    this.current = null;
    proc.channel.close();
    this.options.onUp(false);
    if (this.stopping !== null) return;
    if (Date.now() - this.startedAt >= this.stable) this.delayMs = this.min;
    this.scheduleRestart(code, signal);
  }

  private scheduleRestart(code: number | null, signal: NodeJS.Signals | null): void {
    this.downSince ||= Date.now();
    const wait = this.delayMs;
    this.delayMs = Math.min(this.max, this.delayMs * 2);
    this.nextStartAt = Date.now() + wait;
    this.options.log.warn(
      { code, signal, restart_in_ms: wait },
      `audit store process exited (${signal ?? `code ${code}`}); restarting it in ${wait} ms (the spool keeps the backlog meanwhile)`,
    );
    this.options.log.flush();
    this.timer = setTimeout(() => {
      this.restarts++;
      this.options.onRestart();
      this.launch();
    }, wait);
    this.timer.unref();
  }

  /**
   * Asks the store to stop (it finishes its batch, closes the store), waits up to
   * stopTimeoutMs, then SIGKILLs it. No restart after this.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      const proc = this.current;
      if (proc === null) return;
      proc.channel.send({ t: 'stop' });
      let timer: NodeJS.Timeout | undefined;
      const gone = await Promise.race([
        proc.exited.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.options.stopTimeoutMs ?? STORE_STOP_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (!gone) {
        this.options.log.warn({ store_pid: proc.pid }, 'audit store process did not stop in time: killed (SIGKILL); its backlog ships at the next start');
        proc.kill('SIGKILL');
        await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 2000).unref())]);
      }
      this.current = null;
      proc.channel.close();
      this.options.onUp(false);
    })();
    return this.stopping;
  }
}

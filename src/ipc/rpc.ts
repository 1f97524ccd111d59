import type { SealCall } from './store-protocol';

/** A seal call the store could not answer (down, timed out, or its store failed). */
export class StoreCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'StoreCallError';
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Request/reply over the store channel, by id, each with a timeout. While no store is
 * there (send() false) a call fails at once; when the store goes, every call under way
 * fails (their callers, the sealer, retry with backoff).
 */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly send: (message: { t: 'call'; id: number } & SealCall) => boolean,
    private readonly timeoutMs: number,
  ) {}

  call<T>(call: SealCall): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (!this.send({ t: 'call', id, ...call })) {
        reject(new StoreCallError('GW_ERR_STORE_DOWN', 'the audit store process is not running (it is being restarted)'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new StoreCallError('GW_ERR_STORE_TIMEOUT', `the audit store process did not answer ${call.method} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
    });
  }

  /** A reply from the store; one for an unknown id (timed out already) is ignored. */
  reply(message: { id: number; ok: true; value: unknown } | { id: number; ok: false; code: string; message: string }): void {
    const p = this.pending.get(message.id);
    if (p === undefined) return;
    this.pending.delete(message.id);
    clearTimeout(p.timer);
    if (message.ok) p.resolve(message.value);
    else p.reject(new StoreCallError(message.code, message.message));
  }

  /** The store is gone: every call under way fails now. */
  failAll(): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new StoreCallError('GW_ERR_STORE_DOWN', 'the audit store process exited before answering'));
    }
  }

  get outstanding(): number {
    return this.pending.size;
  }
}

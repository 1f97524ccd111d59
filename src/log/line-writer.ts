import { openSync, writeSync } from 'node:fs';

/**
 * The log destination: whole JSON lines gathered in one string and written with one
 * writeSync per batch (4 KiB), so one system call serves many transactions. pino
 * writes its own lines here too, so every line keeps its order.
 *
 * Why not pino's sonic-boom: measured on this machine, it added ~2 µs a line to a
 * ~0.9 µs line, and its asynchronous mode hands each write to libuv's thread pool
 * (~16 µs a request under load); the per-transaction line was then the largest cost
 * on the hot path (docs/performance.md).
 *
 * A log reader that stops reading (EAGAIN) does not stall the gateway: lines wait here
 * up to `maxPendingBytes`, then are dropped and counted (`dropped`).
 */
export class LineWriter {
  private pending = '';
  /** Lines dropped because the reader stopped reading or went away. */
  dropped = 0;
  private readonly fd: number;

  constructor(
    destination: number | string,
    private readonly batchBytes = 4096,
    private readonly maxPendingBytes = 8 * 1024 * 1024,
  ) {
    this.fd = typeof destination === 'number' ? destination : openSync(destination, 'a');
  }

  write(line: string): boolean {
    if (this.pending.length > this.maxPendingBytes) {
      this.dropped++;
      return false;
    }
    this.pending += line;
    if (this.pending.length >= this.batchBytes) this.flushSync();
    return true;
  }

  /** pino calls flush(cb) from logger.flush(). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  flushSync(): void {
    if (this.pending === '') return;
    const data = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    let offset = 0;
    while (offset < data.length) {
      try {
        offset += writeSync(this.fd, data, offset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          this.pending = data.subarray(offset).toString('utf8') + this.pending; // retried at the next flush
        } else {
          this.dropped++; // EPIPE and the like: the reader is gone; logging must not take the gateway down
        }
        return;
      }
    }
  }
}

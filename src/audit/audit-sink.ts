import type { Transaction } from '../transaction';

/** Where the gateway hands its transactions for audit. The spool implements it. */
export interface AuditSink {
  /**
   * The in-flight record, before the request is forwarded. `done()` runs once it is
   * durable; `done(err)` with a typed error (full, timed out, unavailable, closed) when it
   * cannot be, and then AUDIT_FAILURE_MODE decides whether the request goes on. A record
   * refused at once (no system call) is reported before begin returns. A callback, not a
   * promise: no promise, reaction job and closure chain per request on the hot path.
   */
  begin(tx: Transaction, done: (err?: Error) => void): void;
  /**
   * The final record (also the only record of a refusal). Not awaited for durability:
   * `then` runs once it is in the file (within this turn of the event loop), or, when the
   * disk cannot take it now, once it is held in memory to be written first when the disk
   * recovers (never to be left for recovery to call `interrupted`); the proxy ends the
   * consumer's reply there.
   */
  finish(tx: Transaction, then?: () => void): void;
  /** Whether the spool takes records now: its last write (or probe) succeeded, and it has room. */
  readonly writable: boolean;
}

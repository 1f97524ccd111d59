import type { Duplex } from 'node:stream';
import type { Refusal } from '../errors';
import type { TransactionDone } from '../proxy';
import type { Transaction } from '../transaction';

/**
 * After a refusal written on the raw socket, what the consumer still sends is read and
 * dropped for this long, then the connection is cut: closing with unread bytes at once
 * would reset the connection and could lose the refusal on the way. A parser error may
 * come in the middle of a body still arriving, so it gets longer than an upgrade or
 * CONNECT, whose request has no body the gateway waits out.
 */
export const PARSER_ERROR_LINGER_MS = 2000;
export const UPGRADE_LINGER_MS = 1000;

/** Writes `bytes` (a refusal with `Connection: close`) and ends the connection, cutting it after `lingerMs`. */
export function endAfterLinger(socket: Duplex, bytes: string, lingerMs: number): void {
  socket.end(bytes);
  setTimeout(() => socket.destroy(), lingerMs).unref();
}

/**
 * The end path of a request that never got a ServerResponse, so has no Exchange: Node's
 * parser rejected its head, or it asked for an upgrade or a tunnel. With `answer`, the
 * refusal is written on the raw socket and the connection closed after lingering;
 * without it the caller has broken the connection, or lets an earlier response finish
 * first. Either way the transaction is ended as the refusal and recorded once.
 */
export function refuseOnSocket(
  socket: Duplex,
  tx: Transaction,
  refusal: Refusal,
  answer: { bytes: string; bodyLength: number } | null,
  lingerMs: number,
  record: TransactionDone,
): void {
  if (answer !== null) {
    tx.responseBytes = answer.bodyLength;
    endAfterLinger(socket, answer.bytes, lingerMs);
  }
  if (tx.finish('denied', refusal.status, refusal.code)) record(tx);
}

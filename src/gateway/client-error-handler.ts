import type { Socket } from 'node:net';
import { refuse } from '../errors';
import type { TransactionDone } from '../proxy';
import { Transaction } from '../transaction';
import { rawRefusalResponse } from './refusal-writer';

/**
 * Requests Node's strict parser rejects (CR/LF/NUL in a header, Content-Length with
 * Transfer-Encoding, an oversized header block, garbage) never reach the handler:
 * answer them with an OperationOutcome on the socket, close it, and record the refusal.
 */
export function createClientErrorHandler(
  ownHeaders: readonly string[],
  maxHeaderBytes: number,
  done: TransactionDone,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return function handleClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const refusal = err.code === 'HPE_HEADER_OVERFLOW' ? refuse.headersTooLarge(maxHeaderBytes) : refuse.malformedHttp();
    const tx = new Transaction('', socket.remoteAddress ?? '');
    tx.failureReason = /^[A-Z_]{1,40}$/.test(err.code ?? '') ? err.code! : 'UNKNOWN';
    const response = rawRefusalResponse(refusal, ownHeaders);
    tx.responseBytes = response.length;
    socket.end(response);
    if (tx.finish('denied', refusal.status, refusal.code)) done(tx);
  };
}

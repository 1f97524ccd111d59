import type { Socket } from 'node:net';
import { refuse, UNKNOWN_FAILURE, type Refusal } from '../errors';
import type { TransactionDone } from '../proxy';
import { Transaction } from '../transaction';
import { closeAfter, deferHeadTimeout, holdingReads, responseInProgress, stopReading, exchangeOf } from './connection-state';
import { rawRefusalResponse } from './refusal-writer';
import { endAfterLinger, PARSER_ERROR_LINGER_MS, refuseOnSocket } from './socket-refusal';

export interface ClientErrorDeps {
  ownHeaders: readonly string[];
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  /** Hands on a transaction this handler made (audit, metrics, log); the request handler's end through their Exchange. */
  record: TransactionDone;
}

const SEEN = Symbol('spine-gateway.clientError');

/** The refusal for a parser error, by Node's error code. */
function refusalFor(code: string, deps: ClientErrorDeps): Refusal {
  if (code === 'HPE_HEADER_OVERFLOW') return refuse.headersTooLarge(deps.maxHeaderBytes);
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return refuse.requestTimeout(deps.headersTimeoutMs);
  return refuse.malformedHttp();
}

/**
 * Node's 'clientError': the parser rejected bytes on a consumer connection (CR/LF/NUL in
 * a header, Content-Length with Transfer-Encoding, an oversized header block, a bad chunk,
 * garbage), or the header block did not arrive within HEADERS_TIMEOUT_MS. Every such
 * refusal gets an OperationOutcome where one can be written, and exactly one record:
 *
 * - no response holds the connection: the refusal is written on the socket, which is closed;
 * - the error is in the body of the request being handled: that request's own transaction
 *   ends as the refusal (the refusal is written if its response has not started, else the
 *   connection is broken), so no second `client_aborted` record follows;
 * - a response is in progress for an earlier request: nothing is written into it (the
 *   consumer would read the refusal as part of that body); it finishes, then the
 *   connection closes, and the bad request is recorded as refused with no bytes sent.
 *
 * A connection that sent nothing at all before the header timeout is closed without a
 * record: there was no request.
 */
export function createClientErrorHandler(deps: ClientErrorDeps): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return function handleClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = err.code ?? '';
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT' && holdingReads(socket)) {
      // The next head is incomplete because the gateway stopped reading (pipelined requests
      // wait their turn), not because the consumer is slow: refusing it would drop the waiting
      // requests unanswered. Its deadline starts again once the gateway reads again.
      deferHeadTimeout(socket, deps.headersTimeoutMs, () => handleClientError(err, socket));
      return;
    }
    const current = responseInProgress(socket);
    const marked = socket as Socket & { [SEEN]?: true };
    if (marked[SEEN] === true) {
      // The parser stays failed: later bytes raise this again. After a refusal they are
      // read and dropped until the consumer closes (or the linger ends), so the refusal is
      // not lost to a reset; a response that may still finish keeps going.
      if (socket.writableEnded) return;
      if (current !== null && (current.req.complete || current.writableEnded)) stopReading(socket);
      else socket.destroy();
      return;
    }
    marked[SEEN] = true;
    if (code === 'ECONNRESET' || !socket.writable || (code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.bytesRead === 0 && current === null)) {
      socket.destroy();
      return;
    }
    // TLS faults (a refused renegotiation, a bad record) leave no channel to answer on.
    if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL')) {
      socket.destroy();
      return;
    }
    const refusal = refusalFor(code, deps);
    const reason = /^[A-Z_]{1,40}$/.test(code) ? code : UNKNOWN_FAILURE;

    if (current !== null && !current.req.complete) {
      // The error is in the body of the request this response answers: its transaction
      // ends as the refusal, through its Exchange's one end (nothing written by it: the
      // answer, if any, goes on the raw socket here).
      const ex = exchangeOf(current);
      const open = ex !== null && ex.tx.outcome === 'in_flight';
      if (open) ex.tx.failureReason = reason;
      if (current.writableEnded) {
        // Already answered (a refusal sent while the body was still coming): let it flush, then close.
        stopReading(socket);
        closeAfter(current);
        if (open) ex.end('denied', current.statusCode, refusal.code);
      } else if (!current.headersSent) {
        const response = rawRefusalResponse(refusal, deps.ownHeaders);
        if (open) {
          ex.tx.responseBytes = response.bodyLength;
          ex.end('denied', refusal.status, refusal.code);
        }
        endAfterLinger(socket, response.bytes, PARSER_ERROR_LINGER_MS);
      } else {
        if (open) ex.end('denied', current.statusCode, refusal.code);
        socket.destroy();
      }
      return;
    }

    const tx = new Transaction('', socket.remoteAddress ?? '');
    tx.failureReason = reason;
    if (current !== null) {
      // A response for an earlier request holds the connection: let it finish, then close.
      stopReading(socket);
      closeAfter(current);
      refuseOnSocket(socket, tx, refusal, null, PARSER_ERROR_LINGER_MS, deps.record);
      return;
    }
    refuseOnSocket(socket, tx, refusal, rawRefusalResponse(refusal, deps.ownHeaders), PARSER_ERROR_LINGER_MS, deps.record);
  };
}

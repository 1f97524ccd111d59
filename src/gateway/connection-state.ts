import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Exchange } from '../proxy';

/**
 * What the gateway keeps about a consumer connection, on Node's own objects rather than in
 * a side table: the Exchange (the request's one object) a response belongs to, the pipelined requests waiting for
 * their turn, and the few fields of Node's http server (v20) this relies on, typed once here.
 */

const TX = Symbol('spine-gateway.transaction');
const WAITING = Symbol('spine-gateway.waiting');
const REQUESTS = Symbol('spine-gateway.requests');
const COUNTED = Symbol('spine-gateway.counted');
const HEAD_DUE = Symbol('spine-gateway.headDue');

/** Node's server: `_httpMessage` is the response writing on the socket now; `_paused` is its own read pause. */
export type ServerSocket = Socket & {
  _httpMessage?: ServerResponse | null;
  _paused?: boolean;
  parser?: { resume(): void } | null;
  [WAITING]?: number;
  /** Requests parsed on this connection so far. */
  [REQUESTS]?: number;
  /** Arms a deferred header deadline once the gateway reads the connection again. */
  [HEAD_DUE]?: (() => void) | undefined;
};
/** `_last`: close the connection once this response is finished. */
export type ServerReply = ServerResponse & { _last?: boolean; [TX]?: Exchange; [COUNTED]?: true };

/** Marks `res` as `exchange`'s response, so a parser error on its connection ends the transaction it belongs to. */
export function setExchange(res: ServerResponse, exchange: Exchange): void {
  (res as ServerReply)[TX] = exchange;
}

export function exchangeOf(res: ServerResponse): Exchange | null {
  return (res as ServerReply)[TX] ?? null;
}

/**
 * The response that holds this connection now (being written, or ended but not yet
 * flushed and detached), or null when none does: only then may the gateway write bytes
 * of its own on the socket.
 */
export function responseInProgress(socket: Socket): ServerReply | null {
  return ((socket as ServerSocket)._httpMessage as ServerReply | null | undefined) ?? null;
}

/** Stops reading the connection, the way Node's server pauses it (its parser is paused after the current chunk). */
export function stopReading(socket: Socket): void {
  const s = socket as ServerSocket;
  if (s._paused !== true) {
    s._paused = true;
    s.pause();
  }
}

function startReading(socket: Socket): void {
  const s = socket as ServerSocket;
  if (s._paused === true && !s.destroyed) {
    s._paused = false;
    s.parser?.resume();
    s.resume();
  }
  const due = s[HEAD_DUE];
  if (due !== undefined) {
    s[HEAD_DUE] = undefined;
    due();
  }
}

/** Whether the gateway itself has stopped reading this connection because pipelined requests wait their turn. */
export function holdingReads(socket: Socket): boolean {
  return ((socket as ServerSocket)[WAITING] ?? 0) > 0;
}

/**
 * Node's header timeout fired for a request head the gateway itself stopped reading (a
 * pipelined request waits its turn, so the rest of the next head sits unread): the consumer
 * is not late. Node has dropped the connection from its own deadline list by now, so the
 * deadline is re-armed here: `expire` runs `ms` after the gateway reads the connection
 * again, unless a request head completes first (a slow head is still bounded).
 */
export function deferHeadTimeout(socket: Socket, ms: number, expire: () => void): void {
  const s = socket as ServerSocket;
  const parsed = s[REQUESTS] ?? 0;
  s[HEAD_DUE] = () => {
    setTimeout(() => {
      if (s.destroyed || (s[REQUESTS] ?? 0) !== parsed) return;
      if (holdingReads(s)) deferHeadTimeout(s, ms, expire);
      else expire();
    }, ms).unref();
  };
}

/**
 * Lets `res` finish, then closes the connection: no further response is started on it
 * (a queued pipelined request is never dispatched), and nothing more is read.
 */
export function closeAfter(res: ServerReply): void {
  if (!res.headersSent) res.shouldKeepAlive = false;
  res._last = true;
}

/**
 * HTTP/1.1 answers pipelined requests in order, and Node's server writes them in order,
 * but it hands every parsed request to the handler at once: 20 pipelined requests would
 * open 20 provider connections. A request whose response cannot start yet (the previous
 * one on this connection is still being written: Node has not given it the socket) waits
 * here until Node does, and the connection stops reading meanwhile, so a pipelining
 * consumer holds at most one request at a provider and one read's worth of requests in
 * memory. Returns false (the common case, no allocation) when the request may go now,
 * true when it waits, or is dropped because the connection is already closing.
 */
export function waitForTurn(req: IncomingMessage, res: ServerResponse, go: (req: IncomingMessage, res: ServerResponse) => void): boolean {
  const socket = req.socket as ServerSocket;
  if (!socket.writable) {
    // An earlier response on this connection said `Connection: close` and ended it: what
    // the consumer sent after that is not answered, forwarded or recorded (RFC 9112 9.6).
    stopReading(socket);
    return true;
  }
  // Counted once per request: a request that waited comes through here again on its turn.
  const reply = res as ServerReply;
  if (reply[COUNTED] !== true) {
    reply[COUNTED] = true;
    socket[REQUESTS] = (socket[REQUESTS] ?? 0) + 1;
  }
  if (res.socket !== null) return false;
  socket[WAITING] = (socket[WAITING] ?? 0) + 1;
  stopReading(socket);
  res.once('socket', () => {
    const waiting = --socket[WAITING]!;
    if (waiting === 0) startReading(socket);
    go(req, res);
  });
  return true;
}

/**
 * Node bounds an idle keep-alive connection by inactivity (keepAliveTimeout) and a request
 * head by headersTimeout from its first byte, but empty lines between requests are neither:
 * llhttp skips them without starting a message, and each one resets the inactivity timer. A
 * consumer sending "\r\n" every second held its connection, and a MAX_CONNECTIONS slot, for
 * as long as it liked. So once `res` has finished on a connection kept alive, the next request
 * head must be parsed within `ms` (keep-alive timeout + header timeout: never shorter than
 * what a consumer sending a real request is allowed), or the connection is closed. Nothing is
 * recorded: no request was made.
 */
export function closeIfNoRequestWithin(res: ServerResponse, ms: number): void {
  const socket = res.socket as ServerSocket | null;
  if (socket === null) return;
  res.once('finish', () => {
    if (socket.destroyed || !socket.writable) return;
    const parsed = socket[REQUESTS] ?? 0;
    setTimeout(() => {
      if (!socket.destroyed && (socket[REQUESTS] ?? 0) === parsed && responseInProgress(socket) === null) socket.destroy();
    }, ms).unref();
  });
}

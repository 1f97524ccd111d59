import type { ChildProcess } from 'node:child_process';

/**
 * One end of the store channel. send() never throws: a message to a process that is gone
 * (channel closed, EPIPE) is dropped and send() says false; the caller's state machine
 * (the supervisor, the store's exit on disconnect) handles the loss.
 */
export interface Channel<Out, In> {
  send(message: Out): boolean;
  onMessage(listener: (message: In) => void): void;
  /** Once, when the other end is gone. */
  onClose(listener: () => void): void;
  readonly connected: boolean;
  close(): void;
}

type IpcEnd = Pick<NodeJS.Process, 'connected' | 'on' | 'off'> & {
  send?: (message: unknown, callback?: (error: Error | null) => void) => boolean;
  disconnect?: () => void;
};

/** The channel over a forked child's IPC (the gateway's end), or over process (the child's end). */
export function ipcChannel<Out, In>(end: ChildProcess | NodeJS.Process): Channel<Out, In> {
  const ipc = end as unknown as IpcEnd;
  const closeListeners: Array<() => void> = [];
  let closed = false;
  const closeOnce = () => {
    if (closed) return;
    closed = true;
    for (const l of closeListeners.splice(0)) l();
  };
  ipc.on('disconnect', closeOnce);
  // A child that fails to spawn or dies reports here; never let it become an uncaught 'error'.
  ipc.on('error', () => closeOnce());
  return {
    send(message) {
      if (closed || !ipc.connected || ipc.send === undefined) return false;
      try {
        // The callback takes EPIPE/ERR_IPC_CHANNEL_CLOSED, which would otherwise be emitted as 'error'.
        return ipc.send(message, () => {});
      } catch {
        return false;
      }
    },
    onMessage(listener) {
      ipc.on('message', (m: unknown) => listener(m as In));
    },
    onClose(listener) {
      if (closed) listener();
      else closeListeners.push(listener);
    },
    get connected() {
      return !closed && ipc.connected;
    },
    close() {
      try {
        if (ipc.connected) ipc.disconnect?.();
      } catch {
        /* already gone */
      }
      closeOnce();
    },
  };
}

/**
 * Two ends of an in-memory channel (the in-process test seam): the same messages, JSON-cloned
 * and delivered on a later turn of the event loop, as they would be between processes.
 */
export function channelPair<A, B>(): { a: Channel<A, B>; b: Channel<B, A> } {
  let closed = false;
  const listeners: { a: Array<(m: B) => void>; b: Array<(m: A) => void> } = { a: [], b: [] };
  const closers: Array<() => void> = [];
  const deliver = <M>(to: Array<(m: M) => void>, message: unknown): boolean => {
    if (closed) return false;
    const text = JSON.stringify(message);
    setImmediate(() => {
      if (closed) return;
      const copy = JSON.parse(text) as M;
      for (const l of to) l(copy);
    });
    return true;
  };
  const close = () => {
    if (closed) return;
    closed = true;
    for (const c of closers.splice(0)) c();
  };
  const end = <O, I>(mine: Array<(m: I) => void>, theirs: Array<(m: O) => void>): Channel<O, I> => ({
    send: (m) => deliver(theirs, m),
    onMessage: (l) => void mine.push(l),
    onClose: (l) => (closed ? l() : void closers.push(l)),
    get connected() {
      return !closed;
    },
    close,
  });
  return { a: end<A, B>(listeners.a, listeners.b), b: end<B, A>(listeners.b, listeners.a) };
}

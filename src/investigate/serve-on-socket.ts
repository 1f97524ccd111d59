import { chmodSync, lstatSync, renameSync, unlinkSync, type Stats } from 'node:fs';
import { createServer, maxHeaderSize, type RequestListener, type Server } from 'node:http';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { GatewayError } from '../errors';

/** serveOnSocket could not take the path: a regular file (or another kind) is there, or a live process serves it. */
export class StoreSocketError extends GatewayError {}

/** Longest path a Unix socket can be bound to on Linux (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * The socket's header limit: the admin port's (Node's default, maxHeaderSize) plus room for
 * the fields the proxy adds (x-spine-peer, Transfer-Encoding). Without it a header block the
 * admin port took would be refused by this parser (a bare 431, before the app's access log).
 */
const SOCKET_MAX_HEADER_BYTES = maxHeaderSize + 1024;

/** How long the probe of an existing socket file waits for an answer before calling it live. */
const PROBE_MS = 1000;

/**
 * Serves `app` (the investigations API) on a Unix socket at `path`, readable and writable
 * by this user only (0600): the admin port of the gateway, running as the same user,
 * connects to it (src/admin/audit-store-proxy.ts). Nothing else should: the API trusts the
 * x-spine-peer header only on this socket (access-log.ts).
 *
 * A socket file left by a store that died (SIGKILL leaves it) is removed, once a connect
 * to it is refused; a live one, or anything that is not a socket (a regular file, say:
 * never deleted), stops start-up with a StoreSocketError. The socket is bound under a
 * temporary name, given mode 0600 and then renamed into place, so the path never accepts a
 * connection with the looser mode the umask gives. `close()` removes the file at once (new
 * connections then fail with ENOENT, which the admin port answers 503), unless another
 * server has put its own socket there since.
 */
export async function serveOnSocket(app: RequestListener, path: string): Promise<Server> {
  // Short, in the same directory (rename stays on one file system), and never longer than needed: sun_path is small.
  const temporary = join(dirname(path), `.${process.pid}.sock`);
  for (const p of [path, temporary])
    if (Buffer.byteLength(p) > MAX_SOCKET_PATH)
      throw new StoreSocketError(
        'GW_ERR_STORE_SOCKET_PATH',
        `audit store socket ${path}: ${Buffer.byteLength(p)} bytes, and a Unix socket's path may have at most ${MAX_SOCKET_PATH}: give DATA_DIR a shorter path`,
      );
  await removeStale(path);
  removeIfSocket(temporary);
  const server = createServer({ maxHeaderSize: SOCKET_MAX_HEADER_BYTES }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(temporary, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let ours: Stats;
  try {
    chmodSync(temporary, 0o600);
    renameSync(temporary, path);
    ours = lstatSync(path);
  } catch (err) {
    server.close();
    throw err;
  }
  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void) => {
    try {
      const now = lstatSync(path);
      if (now.ino === ours.ino && now.dev === ours.dev) unlinkSync(path);
    } catch {
      // gone already
    }
    return close(callback);
  };
  return server;
}

/** Removes `path` if it is a socket file nobody listens on; throws if it is anything else or in use. */
async function removeStale(path: string): Promise<void> {
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stats.isSocket())
    throw new StoreSocketError(
      'GW_ERR_STORE_SOCKET_PATH',
      `audit store socket ${path}: a file that is not a socket is in the way; it was left as it is: move it away (it is not the gateway's)`,
    );
  const answer = await probe(path);
  if (answer === 'live')
    throw new StoreSocketError(
      'GW_ERR_STORE_SOCKET_IN_USE',
      `audit store socket ${path}: another process serves it (is another gateway running on this DATA_DIR?); stop it first`,
    );
  removeIfSocket(path);
}

function removeIfSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** 'live' when something accepts a connection at `path` (or does not refuse one within PROBE_MS), else 'stale'. */
function probe(path: string): Promise<'live' | 'stale'> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (answer: 'live' | 'stale') => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done('live'), PROBE_MS);
    socket.once('connect', () => done('live'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'stale' : 'live'));
  });
}

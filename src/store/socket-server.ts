import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';

/**
 * The consumer's address as the admin port saw it, set by the gateway's proxy: a Unix
 * socket has no peer address, and the access log records the investigator's. Trusted
 * because only the gateway's user can connect (mode 0600); removed before the app sees it.
 */
export const CLIENT_ADDRESS_HEADER = 'x-spine-client-address';

function withClientAddress(app: RequestListener): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const address = req.headers[CLIENT_ADDRESS_HEADER];
    delete req.headers[CLIENT_ADDRESS_HEADER];
    // Per request: one connection from the proxy's agent carries requests of several clients, one at a time.
    Object.defineProperty(req.socket, 'remoteAddress', { value: typeof address === 'string' ? address : undefined, configurable: true });
    app(req, res);
  };
}

/**
 * Serves `app` on a Unix socket at `path`, mode 0600 (only the gateway's user may connect):
 * a stale socket left by a killed store is removed first. The local stand-in for the
 * investigations package's serveOnSocket (the same contract).
 */
export function serveOnSocket(app: RequestListener, path: string): Promise<Server> {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const server = createServer(withClientAddress(app));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The socket file is made with the umask's mode: none for group and others from the start (not just after a chmod).
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        try {
          chmodSync(path, 0o600);
        } catch (err) {
          server.close();
          reject(err as Error);
          return;
        }
        resolve(server);
      });
    } finally {
      process.umask(umask);
    }
  });
}

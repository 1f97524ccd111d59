import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';

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
  const server = createServer(app);
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

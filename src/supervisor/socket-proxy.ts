import { request } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The admin port's /audit/* handed to the store's investigations API on its Unix socket,
 * streamed both ways. While the store is down (no socket, or nobody listening) the answer
 * is 503 with a message that says so. A minimal stand-in for the admin package's proxy.
 */
export function storeSocketProxy(socketPath: string, storeState: () => string, whenServing: (ms: number) => Promise<boolean>, waitMs = 15_000) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    // A store still starting (the engine loading) is waited for; one that is down answers 503 at once.
    void whenServing(waitMs).then(() => forward(req, res));
  };
  function forward(req: IncomingMessage, res: ServerResponse): void {
    const unavailable = () => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'retry-after': '1' });
      res.end(
        JSON.stringify({
          error: `audit store unavailable: the audit store process is ${storeState()}; audit search answers again once it is back (records are kept in the spool meanwhile)`,
        }),
      );
    };
    // The investigator's address for the store's access log (its socket has none); a client's own copy is replaced.
    const headers = { ...req.headers, 'x-spine-client-address': req.socket.remoteAddress ?? '' };
    const upstream = request({ socketPath, method: req.method, path: req.url, headers }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
      reply.on('error', () => res.destroy());
    });
    upstream.on('error', unavailable);
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}

import { Agent, createServer, request } from 'node:http';

/**
 * The reference: a bare Node proxy in a few lines (http.request piped both ways,
 * keep-alive agent), forwarding "/http://host:port/path" to host:port/path.
 * No checks at all: it is the floor the gateway is measured against.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const server = createServer((req, res) => {
  const target = new URL(req.url!.slice(1));
  const upstream = request(
    { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers, agent },
    (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});

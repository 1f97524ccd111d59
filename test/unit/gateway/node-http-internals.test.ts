import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * The gateway relies on a few undocumented fields of Node's http server
 * (src/gateway/connection-state.ts): `socket._httpMessage` (the response writing on the
 * connection now), `socket._paused` with `socket.parser.resume()` (the server's own read
 * pause for pipelined requests), and `res._last` (close once this response ends). They
 * are the same in every Node major the package supports (package.json `engines`), and
 * this test says so on the Node it runs on: when a new major moves one, this fails
 * with the field's name rather than a pipelining test failing obscurely.
 */
describe(`Node ${process.version}: the http server fields the gateway relies on`, () => {
  let server: Server;
  let port: number;
  const seen: Array<{ httpMessageIsRes: boolean; paused: unknown; parserResume: unknown; last: unknown; keepAlive: unknown }> = [];
  beforeAll(async () => {
    server = createServer((req, res: ServerResponse) => {
      const socket = req.socket as Socket & { _httpMessage?: unknown; _paused?: unknown; parser?: { resume?: unknown } | null };
      res.write('a');
      seen.push({
        httpMessageIsRes: socket._httpMessage === res,
        paused: socket._paused,
        parserResume: typeof socket.parser?.resume,
        last: (res as ServerResponse & { _last?: unknown })._last,
        keepAlive: res.shouldKeepAlive,
      });
      (res as ServerResponse & { _last?: boolean })._last = true;
      res.end('b');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('_httpMessage, _paused, parser.resume and _last exist and mean what the gateway assumes', async () => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (c) => (received += c.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // Two pipelined requests: `_last` on the first response must close the connection after it.
    socket.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n');
    const timer = setTimeout(() => socket.destroy(), 5000);
    await closed;
    clearTimeout(timer);
    // The second request arrives while the first response still owns the socket: its own
    // response is queued, which is how the gateway knows not to write on the socket.
    expect(seen).toEqual([
      { httpMessageIsRes: true, paused: false, parserResume: 'function', last: false, keepAlive: true },
      { httpMessageIsRes: false, paused: false, parserResume: 'function', last: false, keepAlive: true },
    ]);
    expect(received.match(/HTTP\/1\.1 200/g)).toHaveLength(1);
  });
});

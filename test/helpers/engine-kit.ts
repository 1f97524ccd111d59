import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { ProxyEngine, type ProxyEngineOptions } from '../../src/proxy';
import { createRefusalWriter } from '../../src/gateway/refusal-writer';
import type { Route } from '../../src/route';
import { Transaction } from '../../src/transaction';
import { readRequestHead } from '../../src/validate';
import { transactionLines as logTransactionLines } from './raw-conn';
import type { RunningGateway } from './test-kit';

/** A raw TCP "provider": every byte it received, per connection, and a behaviour per connection. */
export interface RawProvider {
  readonly port: number;
  readonly sockets: Set<Socket>;
  /** Bytes received on each connection, in connection order (latin1). */
  readonly received: string[];
  /** Each connection's socket, in the same order. */
  readonly connections: Socket[];
  close(): Promise<void>;
}

export async function rawProvider(onData: (socket: Socket, all: string, index: number) => void): Promise<RawProvider> {
  const sockets = new Set<Socket>();
  const received: string[] = [];
  const connections: Socket[] = [];
  const server = createTcpServer((s) => {
    const index = received.length;
    received.push('');
    connections.push(s);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      received[index] += d.toString('latin1');
      onData(s, received[index], index);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    received,
    connections,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** One request as a provider's HTTP/1.1 parser reads it, framed by its Content-Length or chunked coding. */
export interface ParsedRequest {
  line: string;
  head: string;
  body: string;
}

/**
 * The complete requests in the bytes of one connection, read the way an HTTP/1.1 server
 * does: a body is what its Content-Length or chunked framing says, nothing more, so
 * whatever follows a body is read as the next request.
 */
export function parseRequests(text: string): ParsedRequest[] {
  const out: ParsedRequest[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const head = text.slice(at, end);
    const line = head.slice(0, (head + '\r\n').indexOf('\r\n'));
    let next = end + 4;
    let body = '';
    if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', next);
        if (lineEnd === -1) return out;
        const size = parseInt(text.slice(next, lineEnd), 16);
        if (Number.isNaN(size)) return out;
        if (size === 0) {
          if (text.length < lineEnd + 4) return out;
          next = lineEnd + 4;
          break;
        }
        if (text.length < lineEnd + 2 + size + 2) return out;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        next = lineEnd + 2 + size + 2;
      }
    } else {
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (cl) {
        if (text.length < next + Number(cl[1])) break;
        body = text.slice(next, next + Number(cl[1]));
        next += Number(cl[1]);
      }
    }
    out.push({ line, head, body });
    at = next;
  }
  return out;
}

/** Request lines (`METHOD /path HTTP/1.x`) a provider read, framing respected, over all its connections. */
export function requestLines(all: readonly string[]): string[] {
  return all.flatMap((text) => parseRequests(text).map((r) => r.line));
}

/**
 * The proxy engine on its own, behind a bare node:http server: every request is forwarded
 * to `providerPort` as if the gateway's handler had accepted it. Tests the engine's own
 * guarantees whatever the handler in front of it refuses.
 */
export interface EngineUnderTest {
  readonly port: number;
  readonly done: Transaction[];
  readonly engine: ProxyEngine;
  close(): Promise<void>;
}

export async function startEngine(providerPort: number, options: Partial<ProxyEngineOptions> = {}): Promise<EngineUnderTest> {
  const done: Transaction[] = [];
  const writeRefusal = createRefusalWriter([], ['GET', 'HEAD', 'POST', 'PUT']);
  const engine = new ProxyEngine(
    {
      timeoutMs: 5000,
      clientIdleMs: 5000,
      maxSockets: 4,
      idleMs: 4000,
      maxBodyBytes: 100 * 1024 * 1024,
      forwardedHeader: false,
      consumerTls: false,
      upstreamTls: {},
      ...options,
    },
    writeRefusal,
    (tx, then) => {
      done.push(tx);
      then?.();
    },
  );
  const root = `http://127.0.0.1:${providerPort}`;
  const server: Server = createServer((req, res) => {
    res.sendDate = false;
    const tx = new Transaction(req.method ?? '', req.socket.remoteAddress ?? '');
    const head = readRequestHead(req.rawHeaders);
    tx.traceId = (req.headers['ssp-traceid'] as string) ?? '';
    const route = {
      endpoint: { url: root, origin: root, path: '', protocol: 'http:', hostname: '127.0.0.1', port: providerPort, hostHeader: `127.0.0.1:${providerPort}` },
      upstreamPath: req.url ?? '/',
    } as unknown as Route;
    engine.forward(engine.open(req, res, tx, head), route);
  });
  server.on('checkContinue', server.listeners('request')[0] as never);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    done,
    engine,
    close: () =>
      new Promise((r) => {
        engine.close();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * A raw client connection: write bytes, read what comes back. `until` resolves once the
 * bytes read so far satisfy a predicate, or the peer closed, or `ms` passed.
 */
export interface RawClient {
  readonly socket: Socket;
  text(): string;
  closed: boolean;
  write(bytes: string | Buffer): void;
  until(predicate: (text: string) => boolean, ms?: number): Promise<string>;
  close(): void;
}

export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let waiters: Array<() => void> = [];
    const socket = connect(port, '127.0.0.1');
    const client: RawClient = {
      socket,
      closed: false,
      text: () => Buffer.concat(chunks).toString('latin1'),
      write: (b) => socket.write(b),
      until(predicate, ms = 3000) {
        return new Promise((res) => {
          const deadline = setTimeout(check, ms);
          function check(): void {
            const t = client.text();
            if (predicate(t) || client.closed || Date.now() >= started + ms) {
              clearTimeout(deadline);
              waiters = waiters.filter((w) => w !== check);
              res(t);
            }
          }
          const started = Date.now();
          waiters.push(check);
          check();
        });
      },
      close: () => socket.destroy(),
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      for (const w of [...waiters]) w();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      client.closed = true;
      for (const w of [...waiters]) w();
    });
    socket.once('connect', () => resolve(client));
    socket.once('error', reject);
  });
}

/** Number of complete HTTP responses' status lines in a raw byte string. */
export function statusLines(text: string): string[] {
  return text.match(/HTTP\/1\.1 \d{3}[^\r\n]*/g) ?? [];
}

/** The gateway's transaction log lines (one per transaction), parsed, optionally for one trace ID. */
export function transactionLines(gw: RunningGateway, traceId?: string): Array<Record<string, unknown>> {
  gw.gateway.log.flush();
  const rows = logTransactionLines(gw.logFile);
  return traceId === undefined ? rows : rows.filter((row) => row.trace_id === traceId);
}

/** A raw request to the gateway's proxy port for `target`, with valid Ssp-* headers and extra header lines. */
export function gatewayRequest(target: string, ssp: Record<string, string>, extra = '', method = 'GET'): string {
  return `${method} /${target} HTTP/1.1\r\nHost: gw\r\n${Object.entries(ssp)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}${extra}\r\n`;
}

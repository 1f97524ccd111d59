import { randomUUID } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import { TestCa } from '../helpers/pki';
import { directoryYaml, send, sspHeaders, startGateway, type RunningGateway } from '../helpers/test-kit';
import {
  gatewayRequest,
  rawClient,
  rawProvider,
  startEngine,
  statusLines,
  transactionLines,
  type EngineUnderTest,
  type RawProvider,
} from '../helpers/engine-kit';

/**
 * A hostile or broken provider, from the back-end side: raw bytes on a raw socket.
 * Invariants for each case: the process lives; the consumer gets the response byte
 * for byte, or a 502/504, or a broken connection, never a clean, wrong reply; the next
 * request on the same consumer connection gets its own answer; a provider socket that
 * saw anything odd is never reused; one final record per transaction, whose status
 * and byte count are what the consumer got.
 */

/** Calls `answer` once per request head a provider connection receives (n counts from 1 per connection). */
function perHead(answer: (s: Socket, line: string, n: number, connection: number) => void): (s: Socket, all: string, index: number) => void {
  const seen = new WeakMap<Socket, number>();
  return (s, all, index) => {
    // A request line starts the connection, follows a head, or follows a test body (lower-case letters).
    const lines = [...all.matchAll(/(?:^|\r\n\r\n|\n|(?<=[a-z]))((?:GET|HEAD|POST|PUT) \/\S* HTTP\/1\.[01])\r\n/g)].map((m) => m[1]);
    let n = seen.get(s) ?? 0;
    while (n < lines.length) {
      const line = lines[n];
      n++;
      seen.set(s, n);
      answer(s, line, n, index);
    }
  };
}

const SECOND = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond';

describe('a hostile provider against the engine', () => {
  let provider: RawProvider;
  let engine: EngineUnderTest;
  let reply: (s: Socket, line: string, n: number) => void;
  beforeAll(async () => {
    provider = await rawProvider(perHead((s, line, n) => reply(s, line, n)));
    engine = await startEngine(provider.port, { timeoutMs: 1500, clientIdleMs: 1500 });
  });
  afterAll(async () => {
    await engine.close();
    await provider.close();
  });

  test('a provider that does nothing odd keeps its socket: GETs and uploads in turn share one connection', async () => {
    reply = (s, line) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${line.length}\r\n\r\n${line}`);
    const c = await rawClient(engine.port);
    try {
      const before = provider.received.length;
      for (const [i, request] of [
        'GET /calm-1 HTTP/1.1\r\nHost: a\r\n\r\n',
        'POST /calm-2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc',
        'POST /calm-3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
        'GET /calm-4 HTTP/1.1\r\nHost: a\r\n\r\n',
      ].entries()) {
        c.write(request);
        await c.until((t) => t.endsWith(`/calm-${i + 1} HTTP/1.1`), 1500);
      }
      const used = provider.received.filter((r, i) => i >= before || r.includes('/calm-'));
      expect(used.filter((r) => r.includes('/calm-'))).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  test('a flood of 100 Continue: the consumer that asked gets one, and the flood never piles up in its socket', async () => {
    reply = (s) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\n'.repeat(2000));
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    };
    const c = await rawClient(engine.port);
    try {
      c.write('POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
      const got = await c.until((t) => t.includes('100 Continue'), 2000);
      expect(got).toContain('100 Continue');
      c.write('hi');
      const text = await c.until((t) => t.endsWith('ok') || t.includes('502 Bad Gateway'), 3000);
      expect((text.match(/HTTP\/1\.1 100 Continue\r\n\r\n/g) ?? []).length).toBeLessThanOrEqual(1);
      expect(statusLines(text).filter((l) => !l.includes(' 100 '))).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  test('1,500 response header lines (under the 16 KiB head limit): all relayed, or a 502, never some silently dropped', async () => {
    const lines = Array.from({ length: 1500 }, (_, i) => `X${i}: v\r\n`).join('');
    reply = (s) => s.write(`HTTP/1.1 200 OK\r\n${lines}Content-Length: 2\r\n\r\nok`);
    const c = await rawClient(engine.port);
    try {
      c.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
      const text = await c.until((t) => t.endsWith('ok') || t.endsWith('}'), 3000);
      if (text.startsWith('HTTP/1.1 200 ')) {
        expect((text.match(/\r\nX\d+: v/g) ?? []).length).toBe(1500);
        expect(text).toMatch(/\r\nContent-Length: 2\r\n[^]*\r\n\r\nok$/);
      } else {
        expect(statusLines(text)).toEqual(['HTTP/1.1 502 Bad Gateway']);
      }
    } finally {
      c.close();
    }
  });

  test.each([
    ['an empty Transfer-Encoding beside Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 2\r\n\r\nok'],
    ['a Transfer-Encoding of commas beside Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: , ,\r\nContent-Length: 2\r\n\r\nok'],
  ])('%s: never both framings to the consumer; the byte-exact reply or a 502, then its own answer to the next request', async (_name, response) => {
    reply = (s, line) => s.write(line.includes('/2') ? SECOND : response);
    const c = await rawClient(engine.port);
    try {
      c.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n');
      const first = await c.until((t) => t.endsWith('ok') || t.endsWith('}') || t.endsWith('\r\n0\r\n\r\n'), 2000);
      const head = first.slice(0, first.indexOf('\r\n\r\n') + 2);
      expect(/\r\nContent-Length:/i.test(head) && /\r\nTransfer-Encoding:/i.test(head)).toBe(false);
      if (first.startsWith('HTTP/1.1 200 ')) expect(first).toMatch(/\r\nContent-Length: 2\r\n(?:[^\r]+\r\n)*\r\nok$/);
      else expect(statusLines(first)).toEqual(['HTTP/1.1 502 Bad Gateway']);
      expect(engine.done.at(-1)!.status).toBe(Number(first.slice(9, 12)));
      if (!/\r\nConnection: close\r\n/i.test(head)) {
        c.write('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
        const all = await c.until((t) => t.endsWith('second'), 2000);
        expect(all.slice(first.length)).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*second$/);
      }
    } finally {
      c.close();
    }
  });

  test('an HTTP/1.0 response with Transfer-Encoding and keep-alive: relayed, and its provider socket closed after it (RFC 9112 6.1)', async () => {
    reply = (s, line) =>
      s.write(line.includes('/h10-2') ? SECOND : 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    const c = await rawClient(engine.port);
    try {
      c.write('GET /h10-1 HTTP/1.1\r\nHost: a\r\n\r\n');
      const first = await c.until((t) => t.endsWith('\r\n0\r\n\r\n'), 2000);
      expect(first).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n2\r\nok\r\n0\r\n\r\n$/);
      c.write('GET /h10-2 HTTP/1.1\r\nHost: a\r\n\r\n');
      await c.until((t) => t.endsWith('second'), 2000);
      // The second request went on another provider connection; the first one was closed.
      const used = provider.received.findIndex((r) => r.includes('GET /h10-1 '));
      expect(provider.received.findIndex((r) => r.includes('GET /h10-2 '))).not.toBe(used);
      expect(provider.connections[used].destroyed || provider.connections[used].readableEnded).toBe(true);
    } finally {
      c.close();
    }
  });

  test('a response begun before the whole upload reached the provider (an early 401): that provider socket is never reused', async () => {
    // The provider answers on the head, then finishes its answer only once the upload is
    // in: a provider that never read that body would read it as the start of the next
    // request on the connection, a prefix another consumer's request would be glued to.
    reply = (s, line) => {
      if (line.includes('/early-2')) return void s.write(SECOND);
      s.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nno');
      setTimeout(() => s.writable && s.write('pe'), 400);
    };
    const a = await rawClient(engine.port);
    const b = await rawClient(engine.port);
    try {
      a.write('POST /early-1 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc');
      await a.until((t) => t.endsWith('no'), 1000);
      a.write('defghij');
      const first = await a.until((t) => t.endsWith('nope'), 1500);
      expect(statusLines(first)).toEqual(['HTTP/1.1 401 Unauthorized']);
      expect(engine.done.at(-1)).toMatchObject({ outcome: 'forwarded', status: 401, responseBytes: 4 });
      await new Promise((r) => setTimeout(r, 50));
      b.write('GET /early-2 HTTP/1.1\r\nHost: a\r\n\r\n');
      expect(await b.until((t) => t.endsWith('second'), 1500)).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*second$/);
      const early = provider.received.findIndex((r) => r.includes('POST /early-1 '));
      expect(provider.received[early]).not.toContain('/early-2');
      expect(provider.connections[early].destroyed).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  test.each([
    ['no framing at all', 'HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n', ''],
    ['Transfer-Encoding: gzip, without chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'gzip'],
  ])(
    "a body that ends with the provider's close (%s) ends with a close for the consumer: no terminator the provider never sent",
    async (_name, head, coding) => {
      // Node cannot tell a provider's clean close from a cut one (a crash, or a TLS
      // connection closed without close_notify): chunking that body would certify to the
      // consumer that it is complete.
      reply = (s) => {
        s.write(head + 'part one,');
        setTimeout(() => s.end(' part two'), 100);
      };
      const c = await rawClient(engine.port);
      try {
        c.write('GET /eof HTTP/1.1\r\nHost: a\r\n\r\n');
        const text = await c.until(() => false, 1500);
        expect(c.closed).toBe(true);
        expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
        const at = text.indexOf('\r\n\r\n');
        expect(text.slice(0, at + 2)).toMatch(/\r\nConnection: close\r\n/);
        if (coding === '') expect(text.slice(0, at + 2)).not.toMatch(/\r\n(?:Transfer-Encoding|Content-Length):/i);
        else expect(text.slice(0, at + 2)).toMatch(new RegExp(`\r\nTransfer-Encoding: ${coding}\r\n`));
        expect(text.slice(at + 4)).toBe('part one, part two');
        expect(engine.done.at(-1)).toMatchObject({ outcome: 'forwarded', status: 200, responseBytes: 18 });
      } finally {
        c.close();
      }
    },
  );

  test('an HTTP/1.0 consumer, whose reply can only end with the close: a provider failure mid-body is a reset, never a clean end', async () => {
    // Chunked from the provider, but an HTTP/1.0 consumer has no chunked framing: its
    // reply ends with the close, so a provider that goes silent must not end it cleanly.
    reply = (s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n');
    const c = await rawClient(engine.port);
    let reset = false;
    c.socket.on('error', () => (reset = true));
    try {
      c.write('GET /old-consumer HTTP/1.0\r\nHost: a\r\n\r\n');
      const text = await c.until(() => false, 3000);
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\npart$/);
      expect(engine.done.at(-1)).toMatchObject({ outcome: 'upstream_timeout', status: 200 });
      expect(c.closed).toBe(true);
      expect(reset).toBe(true);
    } finally {
      c.close();
    }
  });

  test("two answers in one write (the next request's answered early): the consumer gets only its own, the socket is dropped", async () => {
    reply = (s, line) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${line.length}\r\n\r\n${line}HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL`);
    const c = await rawClient(engine.port);
    try {
      c.write('GET /twice-1 HTTP/1.1\r\nHost: a\r\n\r\n');
      await c.until((t) => t.endsWith('/twice-1 HTTP/1.1'), 1500);
      c.write('GET /twice-2 HTTP/1.1\r\nHost: a\r\n\r\n');
      const text = await c.until((t) => t.endsWith('/twice-2 HTTP/1.1'), 1500);
      expect(text).not.toContain('EVIL');
      expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
      const one = provider.received.findIndex((r) => r.includes('GET /twice-1 '));
      expect(provider.received[one]).not.toContain('/twice-2');
      expect(engine.done.slice(-2).map((t) => [t.outcome, t.status, t.responseBytes])).toEqual([
        ['forwarded', 200, 21],
        ['forwarded', 200, 21],
      ]);
    } finally {
      c.close();
    }
  });

  test('endless data to a consumer that leaves: the provider connection is dropped, one client_aborted record', async () => {
    let pumped: Socket | null = null;
    reply = (s) => {
      pumped = s;
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      const block = `4000\r\n${'x'.repeat(0x4000)}\r\n`;
      let budget = 4096; // 64 MiB at most: bounded even if the gateway never stopped it
      const pump = (): void => {
        while (!s.destroyed && budget-- > 0 && s.write(block));
        if (!s.destroyed && budget > 0) s.once('drain', pump);
      };
      pump();
    };
    const records = engine.done.length;
    const c = await rawClient(engine.port);
    c.write('GET /endless HTTP/1.1\r\nHost: a\r\n\r\n');
    await c.until((t) => t.length > 200_000, 2000);
    c.close();
    const deadline = Date.now() + 2000;
    while (!(pumped as Socket | null)?.destroyed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((pumped as Socket | null)?.destroyed).toBe(true);
    expect(engine.done.length - records).toBe(1);
    expect(engine.done.at(-1)).toMatchObject({ outcome: 'client_aborted', status: 200 });
  });
});

describe('the stale-socket retry, against a provider that reads and then resets', () => {
  // Every connection answers its first request; any later request on it is read, then
  // the connection is reset: from the gateway this looks exactly like the stale race.
  // With `all`, fresh connections reset too.
  let all = false;
  let provider: RawProvider;
  let engine: EngineUnderTest;
  beforeAll(async () => {
    provider = await rawProvider(perHead((s, _line, n) => (n === 1 && !all ? s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`) : s.resetAndDestroy())));
    engine = await startEngine(provider.port, { maxSockets: 1 });
  });
  afterAll(async () => {
    await engine.close();
    await provider.close();
  });
  const sent = (path: string) => provider.received.join('').split(` ${path} HTTP/1.1\r\n`).length - 1;

  test.each([
    ['GET', 'GET /again-get HTTP/1.1\r\nHost: a\r\n\r\n', '/again-get', 2],
    ['HEAD', 'HEAD /again-head HTTP/1.1\r\nHost: a\r\n\r\n', '/again-head', 2],
    ['POST with a body', 'POST /again-post HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi', '/again-post', 1],
    ['POST without a body', 'POST /again-post0 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', '/again-post0', 1],
    ['GET with a body', 'GET /again-getbody HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi', '/again-getbody', 1],
  ])(
    '%s on a reused socket that is read and then reset: sent twice at most (once with a body, or not GET/HEAD), one record, a 502',
    async (_name, request, path, times) => {
      all = false;
      const c = await rawClient(engine.port);
      try {
        c.write('GET /warm HTTP/1.1\r\nHost: a\r\n\r\n');
        await c.until((t) => t.endsWith('ok'), 2000);
        // From now on every request is read and then reset, on any connection: the retry too.
        all = true;
        const records = engine.done.length;
        c.write(request);
        const text = await c.until((t) => statusLines(t).length === 2 && (t.endsWith('}') || request.startsWith('HEAD')), 2000);
        expect(statusLines(text).at(-1)).toBe('HTTP/1.1 502 Bad Gateway');
        await new Promise((r) => setTimeout(r, 200));
        expect(sent(path)).toBe(times);
        expect(engine.done.length - records).toBe(1);
        expect(engine.done.at(-1)).toMatchObject({ outcome: 'upstream_error', status: 502 });
      } finally {
        c.close();
      }
    },
  );
});

/** What a strict HTTP/1.1 client makes of the bytes a consumer read: the first response, whole or not. */
interface Read {
  status: number;
  head: string;
  /** Body bytes as they arrived on the wire (chunk framing included), what the record counts are compared to. */
  wireBody: number;
  body: string;
  complete: boolean;
  /** Bytes after the first response. */
  rest: string;
}

function readResponse(text: string, closed: boolean, method = 'GET'): Read {
  const at = text.indexOf('\r\n\r\n');
  const none = { status: 0, head: '', wireBody: 0, body: '', complete: false, rest: '' };
  if (at === -1) return none;
  const head = text.slice(0, at + 2);
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1] ?? 0);
  const after = text.slice(at + 4);
  const cl = /\r\ncontent-length: *(\d+)\r\n/i.exec(head);
  if (method === 'HEAD' || status === 204 || status === 304) return { status, head, wireBody: 0, body: '', complete: true, rest: after };
  if (/\r\ntransfer-encoding:[^\r]*chunked\r\n/i.test(head)) {
    let i = 0;
    let body = '';
    for (;;) {
      const eol = after.indexOf('\r\n', i);
      if (eol === -1) return { status, head, wireBody: after.length, body, complete: false, rest: '' };
      const sizeLine = after.slice(i, eol);
      const size = parseInt(sizeLine, 16);
      // Not a chunk size a strict client reads: the reply is broken there.
      if (!/^[0-9a-fA-F]{1,8}$/.test(sizeLine)) return { status, head, wireBody: after.length, body, complete: false, rest: '' };
      if (size === 0) {
        const end = after.indexOf('\r\n\r\n', eol);
        if (end === -1 && after.slice(eol, eol + 4) !== '\r\n\r\n') return { status, head, wireBody: after.length, body, complete: false, rest: '' };
        const stop = after.slice(eol, eol + 4) === '\r\n\r\n' ? eol + 4 : end + 4;
        return { status, head, wireBody: stop, body, complete: true, rest: after.slice(stop) };
      }
      body += after.slice(eol + 2, eol + 2 + size);
      if (after.length < eol + 2 + size + 2) return { status, head, wireBody: after.length, body, complete: false, rest: '' };
      i = eol + 2 + size + 2;
    }
  }
  if (cl) {
    const n = Number(cl[1]);
    return { status, head, wireBody: Math.min(n, after.length), body: after.slice(0, n), complete: after.length >= n, rest: after.slice(n) };
  }
  // Close-delimited: whole only once the connection closed.
  return { status, head, wireBody: after.length, body: after, complete: closed, rest: '' };
}

/**
 * The invariants over a gateway, the audit record included, for a list of raw provider
 * answers: the byte-exact reply or a 502/504 or a broken connection; one record whose
 * status and bytes are the consumer's; the next request on that connection answered
 * right; the process alive (/healthz).
 */
describe('invariants over the whole gateway, one raw answer at a time', () => {
  const root = (port: number) => `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir`;
  let provider: RawProvider;
  let gw: RunningGateway;
  let answer: (s: Socket) => void;
  beforeAll(async () => {
    provider = await rawProvider(
      perHead((s, line) => {
        if (line.includes('/second')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond');
        else answer(s);
      }),
    );
    gw = await startGateway(directoryYaml({ metadata: root(provider.port) }), { UPSTREAM_TIMEOUT_MS: '600', CLIENT_IDLE_TIMEOUT_MS: '2000' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });

  const big = 'b'.repeat(70_000);
  // [name, raw answer (or a writer), the body a complete relay carries (null: only a 502/504 or a break will do)]
  const cases: Array<[string, string | ((s: Socket) => void), string | null]> = [
    ['plain', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'ok'],
    [
      'chunked with extensions and trailers',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\nContent-Length: 9\r\nConnection: close\r\n\r\n',
      'ok',
    ],
    ['Content-Length and chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', null],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!', null],
    ['Content-Length with a plus', 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok', null],
    ['Content-Length with leading zeros', 'HTTP/1.1 200 OK\r\nContent-Length: 0002\r\n\r\nok', 'ok'],
    ['Content-Length past 2^64', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nok', null],
    ['a chunk size past 2^64', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nok\r\n0\r\n\r\n', null],
    ['chunked, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', null],
    ['identity', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok', 'ok'],
    ['chunked not last', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok\r\n0\r\n\r\n', null],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok', null],
    ['bare LF', 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok', null],
    ['HTTP/0.9 (a body, no head)', 'ok\r\n', null],
    ['HTTP/1.0 without a length on keep-alive', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok', 'ok'],
    ['204 with Content-Length and a body', 'HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok', ''],
    ['a 1xx with a body', 'HTTP/1.1 100 Continue\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', null],
    ['100 then 101', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nRAW', null],
    ['a head over 16 KiB', `HTTP/1.1 200 OK\r\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(600)}Content-Length: 2\r\n\r\nok`, null],
    // Node counts only names and values against its 16 KiB: 10,000 empty fields fit, and are all relayed.
    ['10,000 header lines', `HTTP/1.1 200 OK\r\n${'a:\r\n'.repeat(10_000)}Content-Length: 2\r\n\r\nok`, 'ok'],
    ['a body ended by the close, then silence (a provider timeout)', 'HTTP/1.1 200 OK\r\n\r\npart', null],
    ['50 bytes promised, 5 sent, then a close', (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello'), null],
    ['chunked cut before its terminator', (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n'), null],
    [
      'a reset right after the last byte',
      (s) => {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
        s.resetAndDestroy();
      },
      big,
    ],
    [
      'split at every byte boundary',
      (s) => {
        const bytes = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n2\r\nok\r\n0\r\n\r\n';
        let i = 0;
        const next = (): void => {
          if (i < bytes.length && !s.destroyed) {
            s.write(bytes[i++]);
            setTimeout(next, 1);
          }
        };
        next();
      },
      'ok',
    ],
    ['silence', () => {}, null],
  ];

  test.each(cases)('%s', async (_name, raw, expected) => {
    answer = typeof raw === 'string' ? (s) => s.write(raw) : raw;
    const trace = randomUUID();
    const c = await rawClient(gw.proxyPort);
    // A reset is a broken connection, never the end of a body that ends with the close.
    let reset = false;
    c.socket.on('error', () => (reset = true));
    try {
      c.write(gatewayRequest(`${root(provider.port)}/metadata`, sspHeaders({ 'Ssp-TraceID': trace })));
      const text = await c.until((t) => readResponse(t, false).complete, 2500);
      const got = readResponse(text, c.closed && !reset);
      // The consumer's first response: the provider's, byte for byte, or the gateway's 502/504, or a broken connection.
      if (got.complete && got.status !== 502 && got.status !== 504) {
        expect(expected).not.toBeNull();
        expect(got.body).toBe(expected);
      }
      if (got.status === 502 || got.status === 504) expect(got.head).toContain('application/fhir+json');
      // One record, with the status and body bytes the consumer got.
      let rows = transactionLines(gw, trace);
      for (let i = 0; i < 60 && rows.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        rows = transactionLines(gw, trace);
      }
      await new Promise((r) => setTimeout(r, 300));
      rows = transactionLines(gw, trace);
      expect(rows).toHaveLength(1);
      const row = rows[0];
      if (got.complete) {
        expect(row.status).toBe(got.status);
        if (got.status !== 502 && got.status !== 504) expect(row.outcome).toBe('forwarded');
        expect(row.response_bytes).toBe(got.status === 502 || got.status === 504 || !/chunked/i.test(got.head) ? got.wireBody : got.body.length);
      } else {
        expect(row.outcome).not.toBe('forwarded');
        if (got.status !== 0) expect(row.status).toBe(got.status);
        expect(row.response_bytes as number).toBeLessThanOrEqual(got.wireBody);
      }
      // The next request on the same connection gets its own answer, unless the connection was closed.
      if (!c.closed && got.complete && !/\r\nConnection: close\r\n/i.test(got.head)) {
        const before = text.length;
        c.write(gatewayRequest(`${root(provider.port)}/second`, sspHeaders()));
        const more = await c.until((t) => t.length > before && readResponse(t.slice(before), false).complete, 2500);
        expect(got.rest).toBe('');
        expect(readResponse(more.slice(before), c.closed)).toMatchObject({ status: 200, body: 'second', complete: true });
      }
    } finally {
      c.close();
    }
    // The process lives.
    expect((await send(`http://127.0.0.1:${gw.adminPort}/healthz`)).status).toBe(200);
  });
});

describe('a TLS provider that drops the TCP connection without close_notify', () => {
  const ca = TestCa.create('hostile-tls-ca');
  const issued = ca.issue('provider', { usage: 'server' });
  const context = createSecureContext({ cert: issued.certPem, key: issued.keyPem });
  let answer = '';
  let gw: RunningGateway;
  let root = '';
  const server = createTcpServer((raw) => {
    raw.on('error', () => {});
    const tls = new TLSSocket(raw, { isServer: true, secureContext: context });
    tls.on('error', () => {});
    // Writes the answer, then closes the TCP connection under TLS: no close_notify.
    tls.once('data', () => tls.write(answer, () => setTimeout(() => raw.destroy(), 30)));
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    root = `https://127.0.0.1:${(server.address() as AddressInfo).port}/A20047/STU3/1/gpconnect/fhir`;
    gw = await startGateway(directoryYaml({ metadata: root }), { UPSTREAM_CA_FILE: ca.certFile, UPSTREAM_TIMEOUT_MS: '1500' });
  });
  afterAll(async () => {
    await gw.stop();
    await new Promise((r) => server.close(r));
  });

  test.each([
    ['a Content-Length body cut short', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'],
    ['a chunked body cut before its terminator', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n'],
    ['a body that ends with the close', 'HTTP/1.1 200 OK\r\n\r\npartial'],
  ])("%s: never a reply the consumer reads as whole unless the provider's own framing said so", async (name, raw) => {
    answer = raw;
    const trace = randomUUID();
    const c = await rawClient(gw.proxyPort);
    let reset = false;
    c.socket.on('error', () => (reset = true));
    try {
      c.write(gatewayRequest(`${root}/metadata`, sspHeaders({ 'Ssp-TraceID': trace })));
      const text = await c.until(() => false, 1500);
      const got = readResponse(text, c.closed && !reset);
      let rows = transactionLines(gw, trace);
      for (let i = 0; i < 60 && rows.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        rows = transactionLines(gw, trace);
      }
      expect(rows).toHaveLength(1);
      if (name === 'a body that ends with the close') {
        // Node reports this end as clean, so the gateway cannot know it was cut: it relays
        // the body as the provider framed it, ending with a close, and certifies nothing.
        expect(got.head).toMatch(/\r\nConnection: close\r\n/);
        expect(got.head).not.toMatch(/\r\nTransfer-Encoding:/i);
        expect(got.body).toBe('partial');
        expect(rows[0]).toMatchObject({ outcome: 'forwarded', status: 200, response_bytes: 7 });
      } else {
        expect(got.complete && got.status === 200).toBe(false);
        expect(rows[0].outcome).not.toBe('forwarded');
      }
    } finally {
      c.close();
    }
  });
});

/**
 * Seeded mutations of three valid answers (a byte inserted, dropped or replaced by CR,
 * LF, a framing header, a NUL, a second status line...), each checked like the sweep
 * above. SEED and ITER override the defaults (4,800 runs over six seeds were clean).
 */
describe('fuzz: mutated provider answers', () => {
  const root = (port: number) => `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir`;
  let provider: RawProvider;
  let gw: RunningGateway;
  let answer = Buffer.alloc(0);
  beforeAll(async () => {
    provider = await rawProvider(perHead((s) => s.end(answer)));
    gw = await startGateway(directoryYaml({ metadata: root(provider.port) }), { UPSTREAM_TIMEOUT_MS: '400' });
  });
  afterAll(async () => {
    await gw.stop();
    await provider.close();
  });
  test("the consumer's bytes and the one record agree, and the gateway lives", async () => {
    let seed = Number(process.env.SEED ?? 7);
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const bases = [
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nhello',
    ];
    const alphabet = [
      '\r',
      '\n',
      ' ',
      '\t',
      ':',
      ',',
      '0',
      '5',
      'a',
      'chunked',
      'Content-Length: 5\r\n',
      'Transfer-Encoding: chunked\r\n',
      'Connection: content-length\r\n',
      '\x00',
      '\x7f',
      '\xff',
      'HTTP/1.1 200 OK\r\n\r\n',
    ];
    const bad: string[] = [];
    for (let i = 0; i < Number(process.env.ITER ?? 120); i++) {
      let m = bases[rnd(bases.length)];
      for (let k = 0, n = 1 + rnd(3); k < n; k++) {
        const at = rnd(m.length);
        const op = rnd(3);
        const piece = alphabet[rnd(alphabet.length)];
        m = op === 0 ? m.slice(0, at) + piece + m.slice(at) : op === 1 ? m.slice(0, at) + m.slice(at + 1) : m.slice(0, at) + piece + m.slice(at + 1);
      }
      answer = Buffer.from(m, 'latin1');
      const trace = randomUUID();
      const c = await rawClient(gw.proxyPort);
      let reset = false;
      c.socket.on('error', () => (reset = true));
      c.write(gatewayRequest(`${root(provider.port)}/metadata`, sspHeaders({ 'Ssp-TraceID': trace }), 'Connection: close\r\n'));
      const text = await c.until(() => false, 1500);
      c.close();
      const got = readResponse(text, c.closed && !reset);
      let rows = transactionLines(gw, trace);
      for (let j = 0; j < 40 && rows.length === 0; j++) {
        await new Promise((r) => setTimeout(r, 25));
        rows = transactionLines(gw, trace);
      }
      const row = rows[0];
      const problems: string[] = [];
      if (rows.length !== 1) problems.push(`records ${rows.length}`);
      if (got.complete && got.status !== 502 && got.status !== 504) {
        if (row?.outcome !== 'forwarded') problems.push(`complete ${got.status} but ${row?.outcome}`);
        if (got.rest !== '') problems.push('bytes after the response');
      }
      if (got.complete && row && row.status !== got.status) problems.push(`status ${got.status} vs ${row.status}`);
      if (!got.complete && row?.outcome === 'forwarded') problems.push('forwarded but incomplete');
      if (problems.length > 0) bad.push(`${JSON.stringify(m)} -> ${JSON.stringify(text.slice(0, 200))} ${problems.join('; ')} ${JSON.stringify(row)}`);
    }
    expect((await send(`http://127.0.0.1:${gw.adminPort}/healthz`)).status).toBe(200);
    if (bad.length) console.log(bad.join('\n'));
    expect(bad).toEqual([]);
  });
});

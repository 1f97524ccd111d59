import type { Socket } from 'node:net';
import { rawClient, rawProvider, startEngine, statusLines, type EngineUnderTest, type RawProvider } from '../helpers/engine-kit';

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
    const lines = [...all.matchAll(/(?:^|\r\n\r\n|\n)([A-Z]+ \/\S* HTTP\/1\.[01])\r\n/g)].map((m) => m[1]);
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
    reply = (s, line) => s.write(line.includes('/h10-2') ? SECOND : 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
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
  ])('a body that ends with the provider\'s close (%s) ends with a close for the consumer: no terminator the provider never sent', async (_name, head, coding) => {
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
  });
});

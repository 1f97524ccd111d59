import { connectionTokens, headersForConsumer, headersForProvider } from '../../../src/proxy/hop-by-hop';

describe('Connection options never remove framing or the target (request smuggling, issue 9)', () => {
  test.each(['Content-Length', 'content-length', ' TRANSFER-ENCODING ', 'Host', 'keep-alive, Content-Length, Host'])('Connection: %s names no hop-by-hop field', (value) => {
    expect(connectionTokens(value)).toBeNull();
  });

  test('other options still name hop-by-hop fields', () => {
    expect([...(connectionTokens('close, X-Hop, Content-Length') ?? [])]).toEqual(['x-hop']);
  });

  test('a request keeps Content-Length and Host whatever Connection says; Transfer-Encoding leaves in lower case', () => {
    const raw = ['Host', 'gw', 'Connection', 'Content-Length, X-Hop', 'Content-Length', '67', 'X-Hop', 'a', 'X-Kept', 'b'];
    const out = headersForProvider(raw, connectionTokens('Content-Length, X-Hop'), 'provider:443', null);
    expect(out).toEqual(['Host', 'provider:443', 'Content-Length', '67', 'X-Kept', 'b']);
    const chunked = headersForProvider(['Transfer-Encoding', 'Chunked', 'Connection', 'Transfer-Encoding'], connectionTokens('Transfer-Encoding'), 'p', null);
    expect(chunked).toEqual(['Transfer-Encoding', 'chunked', 'Host', 'p']);
    expect(headersForProvider(['Transfer-Encoding', 'GZIP ,Chunked'], null, 'p', null)).toEqual(['Transfer-Encoding', 'gzip, chunked', 'Host', 'p']);
  });
});

describe('a provider response head for the consumer', () => {
  const framing = { contentLength: -2, transferCoded: false, chunked: false };

  test('Content-Length survives Connection: Content-Length and is noted', () => {
    expect(headersForConsumer(['Connection', 'Content-Length', 'Content-Length', '5', 'X', 'y'], framing, false)).toEqual(['Content-Length', '5', 'X', 'y']);
    expect(framing.contentLength).toBe(5);
  });

  test('plain chunked is re-made by Node; other codings are named as they came (without chunked, the body ends with the close)', () => {
    expect(headersForConsumer(['Transfer-Encoding', 'chunked'], framing, false)).toEqual([]);
    expect(framing.contentLength).toBe(-1);
    expect(framing.chunked).toBe(true);
    expect(headersForConsumer(['Transfer-Encoding', 'gzip, chunked'], framing, false)).toEqual(['Transfer-Encoding', 'gzip, chunked']);
    expect(framing.chunked).toBe(true);
    expect(headersForConsumer(['Transfer-Encoding', 'gzip'], framing, false)).toEqual(['Transfer-Encoding', 'gzip']);
    expect(framing.chunked).toBe(false);
  });

  test.each([
    ['chunked not last', ['Transfer-Encoding', 'chunked, gzip'], false],
    ['codings over two lines', ['Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked'], false],
    ['codings for an HTTP/1.0 consumer', ['Transfer-Encoding', 'gzip, chunked'], true],
    ['no coding at all, beside a Content-Length', ['Transfer-Encoding', '', 'Content-Length', '2'], false],
  ])('%s: cannot be relayed as it is', (_name, raw, http10) => {
    expect(headersForConsumer(raw as string[], framing, http10 as boolean)).toBeNull();
  });
});

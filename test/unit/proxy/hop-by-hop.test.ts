import { connectionTokens, forwardedValue, headersForConsumer, headersForProvider } from '../../../src/proxy/hop-by-hop';

describe('Connection options never remove framing or the target (request smuggling)', () => {
  test.each(['Content-Length', 'content-length', ' TRANSFER-ENCODING ', 'Host', 'keep-alive, Content-Length, Host'])(
    'Connection: %s names no hop-by-hop field',
    (value) => {
      expect(connectionTokens(value)).toBeNull();
    },
  );

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

describe('every hop-by-hop field is dropped, every other line passes unchanged', () => {
  const HOP = ['Connection', 'Proxy-Connection', 'Keep-Alive', 'TE', 'Trailer', 'Upgrade', 'Proxy-Authenticate', 'Proxy-Authorization'];

  test.each(HOP)('%s (any case) never reaches the provider or the consumer', (name) => {
    for (const spelled of [name, name.toUpperCase(), name.toLowerCase()]) {
      const raw = ['X-Before', '1', spelled, 'v', 'X-After', '2'];
      expect(headersForProvider(raw, null, 'p', null)).toEqual(['X-Before', '1', 'X-After', '2', 'Host', 'p']);
      expect(headersForConsumer(raw, { contentLength: -2, transferCoded: false, chunked: false }, false)).toEqual(['X-Before', '1', 'X-After', '2']);
    }
  });

  test("names, values, order and repeats of other lines are kept, and Host is the provider's own, once, where the consumer put it", () => {
    const raw = ['x-lower', 'a', 'X-UPPER', 'B ', 'Host', 'gw.example', 'Accept', 'x', 'Accept', 'y', 'HOST', 'second.example'];
    expect(headersForProvider(raw, null, 'provider:443', null)).toEqual([
      'x-lower',
      'a',
      'X-UPPER',
      'B ',
      'Host',
      'provider:443',
      'Accept',
      'x',
      'Accept',
      'y',
    ]);
  });

  test('fields a Connection option names are dropped in both directions, in any case', () => {
    expect(headersForProvider(['X-Hop', '1', 'x-keep', '2'], connectionTokens('X-HOP'), 'p', null)).toEqual(['x-keep', '2', 'Host', 'p']);
    expect(
      headersForConsumer(
        ['Connection', 'x-hop', 'Connection', 'Other', 'X-Hop', '1', 'other', '2', 'X-Keep', '3'],
        { contentLength: -2, transferCoded: false, chunked: false },
        false,
      ),
    ).toEqual(['X-Keep', '3']);
  });

  test('Forwarded is appended as a new line, after any the consumer sent', () => {
    expect(headersForProvider(['Forwarded', 'for=1.2.3.4'], null, 'p', 'for=127.0.0.1;proto=http')).toEqual([
      'Forwarded',
      'for=1.2.3.4',
      'Host',
      'p',
      'Forwarded',
      'for=127.0.0.1;proto=http',
    ]);
  });

  test('a response without Content-Length notes -1', () => {
    const framing = { contentLength: 99, transferCoded: false, chunked: false };
    expect(headersForConsumer(['X', 'y'], framing, false)).toEqual(['X', 'y']);
    expect(framing.contentLength).toBe(-1);
  });
});

describe('forwardedValue (RFC 7239)', () => {
  test.each([
    ['127.0.0.1', false, 'for=127.0.0.1;proto=http'],
    ['::ffff:10.1.2.3', true, 'for=10.1.2.3;proto=https'],
    ['::1', false, 'for="[::1]";proto=http'],
    ['2001:db8::7', true, 'for="[2001:db8::7]";proto=https'],
    ['', false, 'for=unknown;proto=http'],
  ])('%j (tls %s) -> %s', (ip, tls, value) => {
    expect(forwardedValue(ip, tls)).toBe(value);
  });
});

import { checkSspHeaders, forbiddenConnectionOption, readRequestHead } from '../../../src/validate';

describe('forbiddenConnectionOption', () => {
  test.each([
    ['Content-Length', 'Content-Length'],
    ['content-length', 'Content-Length'],
    [' \tCONTENT-LENGTH\t ', 'Content-Length'],
    ['keep-alive, Transfer-Encoding', 'Transfer-Encoding'],
    ['close,,host', 'Host'],
    ['x-a, Authorization', 'Authorization'],
    ['Expect', 'Expect'],
    ['upgrade', 'Upgrade'],
    ['Ssp-TraceID', 'Ssp-TraceID'],
    ['ssp-from', 'Ssp-From'],
    ['SSP-TO', 'Ssp-To'],
    ['ssp-interactionid', 'Ssp-InteractionID'],
    ['Ssp-Whatever', 'an Ssp-* header'],
  ])('%j names %s', (value, named) => {
    expect(forbiddenConnectionOption(value)).toBe(named);
  });

  test.each(['keep-alive', 'close', 'Keep-Alive', 'X-Hop', 'keep-alive, X-Hop, TE', '', ',', 'content-length-x', 'xcontent-length', 'sspfrom'])(
    '%j names nothing forbidden',
    (value) => {
      expect(forbiddenConnectionOption(value)).toBeNull();
    },
  );

  test('the diagnostics never carry the consumer spelling of an unknown Ssp-* name', () => {
    expect(forbiddenConnectionOption('Ssp-<script>')).toBe('an Ssp-* header');
  });
});

describe('readRequestHead: Host and Upgrade', () => {
  test('counts Host lines and notes Upgrade', () => {
    const head = readRequestHead(['Host', 'a', 'host', 'b', 'Upgrade', 'h2c', 'Connection', 'keep-alive', 'connection', 'Content-Length']);
    expect(head.hosts).toBe(2);
    expect(head.upgrade).toBe(true);
    expect(head.connection).toBe('keep-alive,Content-Length');
  });
});

describe('readRequestHead: framing and look-alike fields', () => {
  test.each([
    [['Transfer-Encoding', 'chunked'], false],
    [['Transfer-Encoding', 'CHUNKED'], false],
    [['Transfer-Encoding', 'identity, chunked'], true],
    [['Transfer-Encoding', 'gzip, chunked'], true],
    [['Transfer-Encoding', 'chunked', 'transfer-encoding', 'chunked'], true],
  ])('Transfer-Encoding %j: otherTransferCoding %s', (raw, other) => {
    const head = readRequestHead(raw);
    expect(head.hasTransferEncoding).toBe(true);
    expect(head.otherTransferCoding).toBe(other);
  });

  test.each([
    [['Expect', '100-continue'], true, false],
    [['Expect', '100-Continue'], true, false],
    [['Expect', '200-ok'], false, true],
    [['Expect', '100-continue, foo'], false, true],
    [['Expect', '100-continue', 'Expect', 'foo'], true, true],
  ])('Expect %j: expectsContinue %s, unmetExpectation %s', (raw, cont, unmet) => {
    const head = readRequestHead(raw);
    expect(head.expectsContinue).toBe(cont);
    expect(head.unmetExpectation).toBe(unmet);
  });

  test.each([
    ['Ssp_From', 'Ssp-From'],
    ['SSP_TRACEID', 'Ssp-TraceID'],
    ['ssp_interactionid', 'Ssp-InteractionID'],
    ['Ssp_Whatever', 'Ssp-*'],
    ['Content_Length', 'Content-Length'],
    ['Transfer_Encoding', 'Transfer-Encoding'],
    ['connection', null],
    ['Connec_tion', null],
    ['X_Request_ID', null],
    ['Authorization', null],
  ])('field name %s: underscoreAlias %s', (name, alias) => {
    expect(readRequestHead([name, 'v']).underscoreAlias).toBe(alias);
  });
});

describe('readRequestHead: the fields the gateway acts on, in one pass, any case', () => {
  const TRACE = '629ea9ba-a077-4d99-b289-7a9b19fd4e03';
  const ssp = [
    'SSP-TRACEID',
    TRACE,
    'ssp-from',
    '200000000359',
    'Ssp-To',
    '918999198993',
    'Ssp-InteractionId',
    'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
  ];

  test('Ssp-* values, Accept, Authorization, Expect and framing', () => {
    const head = readRequestHead([...ssp, 'ACCEPT', 'application/fhir+json', 'authorization', 'Bearer x', 'Expect', '100-Continue', 'content-length', '17']);
    expect(head).toMatchObject({
      traceId: TRACE,
      from: '200000000359',
      to: '918999198993',
      interactionId: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
      repeated: null,
      accept: 'application/fhir+json',
      authorization: 'Bearer x',
      expectsContinue: true,
      contentLength: 17,
      hasTransferEncoding: false,
      hosts: 0,
      upgrade: false,
      connection: null,
    });
    expect(head.hasBody).toBe(true);
  });

  test('no body: Content-Length absent (-1) or 0 and no Transfer-Encoding; a body: chunked, whatever its length', () => {
    expect(readRequestHead(ssp)).toMatchObject({ contentLength: -1, hasBody: false });
    expect(readRequestHead([...ssp, 'Content-Length', '0'])).toMatchObject({ contentLength: 0, hasBody: false });
    expect(readRequestHead([...ssp, 'Transfer-Encoding', 'chunked']).hasBody).toBe(true);
    expect(readRequestHead([...ssp, 'Content-Length', '0', 'transfer-encoding', 'chunked']).hasBody).toBe(true);
  });

  test('Expect other than 100-continue is not a continue', () => {
    expect(readRequestHead(['Expect', 'something-else']).expectsContinue).toBe(false);
  });

  test('names of the same length that are not ours are ignored', () => {
    const head = readRequestHead([
      'Hostx',
      'a',
      'Ssp-Tx',
      'x',
      'Ssp-Frox',
      'x',
      'Ssp-TraceIX',
      'x',
      'Content-Lengtx',
      '5',
      'Ssp-InteractionIX',
      'x',
      'Transfer-EncodinX',
      'x',
    ]);
    expect(head).toMatchObject({
      hosts: 0,
      to: null,
      from: null,
      traceId: null,
      contentLength: -1,
      interactionId: null,
      hasTransferEncoding: false,
      repeated: null,
    });
  });

  test.each(['Ssp-TraceID', 'Ssp-From', 'Ssp-To', 'Ssp-InteractionID'])('%s sent twice is noted as repeated, by its canonical name', (name) => {
    const i = ssp.findIndex((n) => n.toLowerCase() === name.toLowerCase());
    const head = readRequestHead([...ssp, name.toUpperCase(), ssp[i + 1]]);
    expect(head.repeated).toBe(name);
  });
});

describe('checkSspHeaders', () => {
  const good = () =>
    readRequestHead([
      'Ssp-TraceID',
      '629EA9BA-A077-4D99-B289-7A9B19FD4E03',
      'Ssp-From',
      '200000000359',
      'Ssp-To',
      '918999198993',
      'Ssp-InteractionID',
      'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
    ]);

  test('four well-formed headers, sent once each: no refusal (a GUID in either case)', () => {
    expect(checkSspHeaders(good())).toBeNull();
  });

  test.each([
    ['traceId', 'not-a-guid', 'Ssp-TraceID'],
    ['from', '2000 00000359', 'Ssp-From'],
    ['to', '91899919899x', 'Ssp-To'],
    ['interactionId', 'urn:nhs names', 'Ssp-InteractionID'],
    ['interactionId', null, 'Ssp-InteractionID'],
  ] as const)('%s = %j: refused as MISSING_OR_INVALID_HEADER naming %s, the value dropped from the head', (key, value, header) => {
    const head = good();
    head[key] = value;
    const refusal = checkSspHeaders(head);
    expect(refusal).toMatchObject({ code: 'MISSING_OR_INVALID_HEADER', status: 400 });
    expect(refusal!.diagnostics).toContain(`The ${header} header`);
    if (value !== null) expect(refusal!.diagnostics).not.toContain(value); // never echoed
    expect(head[key]).toBeNull(); // only well-formed values reach the audit record
  });

  test('a repeated header is refused first, by name, even when the others are malformed; well-formed values are kept', () => {
    const head = good();
    head.repeated = 'Ssp-To';
    head.from = 'x';
    expect(checkSspHeaders(head)!.diagnostics).toContain('The Ssp-To header');
    expect(head.from).toBeNull();
    expect(head.to).toBe('918999198993');
  });

  test('the first missing header, in the order TraceID, From, To, InteractionID, is named', () => {
    expect(checkSspHeaders(readRequestHead([]))!.diagnostics).toContain('Ssp-TraceID');
    const head = good();
    head.to = null;
    head.interactionId = null;
    expect(checkSspHeaders(head)!.diagnostics).toContain('Ssp-To');
  });
});

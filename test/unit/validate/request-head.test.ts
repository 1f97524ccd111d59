import { forbiddenConnectionOption, readRequestHead } from '../../../src/validate';

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

  test.each(['keep-alive', 'close', 'Keep-Alive', 'X-Hop', 'keep-alive, X-Hop, TE', '', ',', 'content-length-x', 'xcontent-length', 'sspfrom'])('%j names nothing forbidden', (value) => {
    expect(forbiddenConnectionOption(value)).toBeNull();
  });

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

describe('readRequestHead: framing and look-alike fields (issue 9 red team r2)', () => {
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

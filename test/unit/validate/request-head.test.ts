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

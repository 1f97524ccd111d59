import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineWriter } from '../../../src/log/line-writer';
import { tempDir } from '../../helpers/test-kit';

const file = () => join(tempDir(), 'out.log');

describe('LineWriter', () => {
  test('holds lines until a batch fills, then writes them in order with one write', () => {
    const path = file();
    const w = new LineWriter(path, 30);
    w.write('line-1\n');
    w.write('line-2\n');
    expect(readFileSync(path, 'utf8')).toBe('');
    w.write('line-3-makes-the-batch-full\n');
    expect(readFileSync(path, 'utf8')).toBe('line-1\nline-2\nline-3-makes-the-batch-full\n');
  });

  test('flush writes what is pending, and calls back as pino expects', () => {
    const path = file();
    const w = new LineWriter(path);
    w.write('only\n');
    const done = jest.fn();
    w.flush(done);
    expect(done).toHaveBeenCalledTimes(1);
    expect(readFileSync(path, 'utf8')).toBe('only\n');
  });

  test('past its pending cap it drops and counts lines instead of growing', () => {
    const path = file();
    const w = new LineWriter(path, 1_000_000, 20);
    expect(w.write('0123456789012345678901\n')).toBe(true);
    expect(w.write('dropped\n')).toBe(false);
    expect(w.dropped).toBe(1);
    w.flush();
    expect(readFileSync(path, 'utf8')).toBe('0123456789012345678901\n');
  });
});

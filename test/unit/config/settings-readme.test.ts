import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingsSchema } from '../../../src/config/settings';

/** The README's settings table: every name in its first column (a row may name two, "`A`, `B`"). */
function readmeSettings(): Set<string> {
  const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const names = new Set<string>();
  for (const line of readme.split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1] ?? '';
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1]);
  }
  return names;
}

describe('the README settings table', () => {
  test('has a row for every setting the gateway reads', () => {
    const documented = readmeSettings();
    const missing = Object.keys(settingsSchema.shape).filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
  });
});

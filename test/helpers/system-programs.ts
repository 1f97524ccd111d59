import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** scripts/system-packages.json: each program the suite runs, and the Debian package that brings it. */
// From test/helpers under ts-jest, or dist/test/helpers when the bench runs the compiled helpers.
const LIST = [join(__dirname, '..', '..', 'scripts', 'system-packages.json'), join(__dirname, '..', '..', '..', 'scripts', 'system-packages.json')].find((f) =>
  existsSync(f),
)!;
const PACKAGES: Record<string, string> = JSON.parse(readFileSync(LIST, 'utf8')).programs;

const checked = new Map<string, boolean>();

/**
 * Throws one clear line, with no stack trace, when `program` is not installed: which
 * Debian package brings it and the one command that installs every such package.
 */
export function requireProgram(program: string): void {
  let present = checked.get(program);
  if (present === undefined) {
    present = spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
    checked.set(program, present);
  }
  if (present) return;
  const pkg = PACKAGES[program] ?? program;
  const error = new Error(`${program} is not installed: run \`npm run setup:system\` (installs Debian's ${pkg})`);
  error.stack = error.message; // one line in the test report, not a trace into this helper
  throw error;
}

import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { requireProgram } from './system-programs';
import { tempDir } from './test-kit';

/**
 * Real disk faults for the audit spool tests: a small tmpfs that fills up, and files made
 * immutable (`chattr +i`: as root, chmod does not stop writes). Both need root; a suite
 * that cannot have them skips with the one-line reason from `diskFaultsUnavailable()`.
 */

let cached: string | null | undefined;

/** Null when a tmpfs can be mounted and chattr works here; otherwise why not, in one line. */
export function diskFaultsUnavailable(): string | null {
  if (cached !== undefined) return cached;
  if (process.getuid?.() !== 0) return (cached = 'needs root to mount a tmpfs and to chattr +i');
  requireProgram('chattr');
  requireProgram('mount');
  const dir = tempDir('tmpfs-probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    return (cached = `cannot mount a tmpfs: ${
      String((err as { stderr?: Buffer }).stderr ?? (err as Error).message)
        .trim()
        .split('\n')[0]
    }`);
  }
  try {
    const file = join(dir, 'x');
    closeSync(openSync(file, 'w'));
    execFileSync('chattr', ['+i', file], { stdio: 'pipe' });
    execFileSync('chattr', ['-i', file], { stdio: 'pipe' });
    cached = null;
  } catch {
    cached = 'chattr +i does not work on tmpfs here';
  } finally {
    execFileSync('umount', [dir], { stdio: 'pipe' });
    rmSync(dir, { recursive: true, force: true });
  }
  return cached;
}

/** Mounts a tmpfs of `bytes` at `dir` (created if missing). Unmount with unmountTmpfs(dir). */
export function mountTmpfs(dir: string, bytes: number): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
}

/** Unmounts exactly the tmpfs mounted at `dir` (lazily, so an open file in a dead child cannot block it). */
export function unmountTmpfs(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  } catch {
    /* not mounted */
  }
}

/**
 * Fills the file system holding `dir` with one file until the kernel says ENOSPC, in
 * shrinking steps down to 512 bytes (bounded: at most ~2,000 writes). Returns its path:
 * delete it to give the space back.
 */
export function fillDisk(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'a');
  try {
    for (const step of [256 * 1024, 4096, 512]) {
      const chunk = Buffer.alloc(step);
      for (let i = 0; i < 2000; i++) {
        try {
          writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

export function chattr(flag: '+i' | '-i' | '+a' | '-a', path: string): void {
  execFileSync('chattr', [flag, path], { stdio: 'pipe' });
}

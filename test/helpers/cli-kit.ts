import { main } from '../../src/cli/spine-gateway';

/** What one command line run gave: its exit status and everything it wrote. */
export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * `spine-gateway <args>` in this process (main(), as the bin calls it), so coverage sees
 * the commands: with `env` set for the run (undefined deletes a variable) and restored
 * after, and what it writes to process.stdout and process.stderr captured. The exit status
 * is process.exitCode, reset after.
 */
export async function runCliInProcess(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const saved = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += c.toString()), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += c.toString()), true));
  try {
    await main(['node', 'spine-gateway', ...args]);
    return { status: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
    process.env = saved;
  }
}

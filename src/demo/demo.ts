import { DemoOptionError, demoOptions } from './demo-options';
import { DemoAborted, DemoStartError, startDemo, type RunningDemo } from './run-demo';

/**
 * `npm run demo` (README "Demo"): starts the demo (src/demo/run-demo.ts) and stops it on
 * Ctrl-C (SIGINT) or SIGTERM, then exits 0. A start-up problem is one line on stderr and
 * exit 1, with nothing left running.
 */
const out = (line = '') => process.stdout.write(`${line}\n`);
function fail(line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let options;
  try {
    options = demoOptions();
  } catch (err) {
    if (err instanceof DemoOptionError) fail(`demo: ${err.message}`);
    throw err;
  }
  // Signals are handled from the start: while starting they abort it (what started is stopped).
  const abort = new AbortController();
  let stop = (signal: string) => abort.abort(signal);
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  let demo: RunningDemo;
  try {
    demo = await startDemo(options, out, abort.signal);
  } catch (err) {
    if (err instanceof DemoAborted) process.exit(0);
    if (err instanceof DemoStartError) fail(err.message);
    throw err;
  }
  let stopping = false;
  stop = (signal) => {
    stopping = true;
    void demo.stop(signal).then(() => process.exit(0));
  };
  void demo.gatewayExited.then((code) => {
    if (stopping) return;
    process.stderr.write(`demo: the gateway exited unexpectedly (status ${code}); its log is in the files listed above\n`);
    void demo.stop('gateway gone').then(() => process.exit(1));
  });
}

void main().catch((err: unknown) => fail(`demo: ${(err as Error).message}`));

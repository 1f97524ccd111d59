import { buildGateway } from './app';
import { loadSettings } from './config';

/** Start-up only: settings, the gateway, signals. A bad start prints one line and exits 1. */
async function main(): Promise<void> {
  const cannotStart = (err: unknown): never => {
    const e = err as NodeJS.ErrnoException;
    const line = e.code === 'EADDRINUSE' || e.code === 'EACCES' ? `listen: ${e.message}` : e.message;
    process.stderr.write(`spine-gateway: cannot start: ${line}\n`);
    process.exit(1);
  };
  let gateway;
  try {
    gateway = await buildGateway(loadSettings());
  } catch (err) {
    cannotStart(err);
  }
  const gw = gateway!;
  process.on('SIGHUP', () => {
    gw.directory.reload('SIGHUP');
    gw.reloadTls();
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    gw.log.info({ signal }, 'shutting down');
    gw.log.flush();
    gw.shutdown().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`spine-gateway: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Listening comes last, so a signal sent as soon as the gateway says it listens finds
  // the handlers above (and a SIGTERM still stops it cleanly, releasing DATA_DIR).
  try {
    await gw.listen();
  } catch (err) {
    cannotStart(err);
  }
}

void main();

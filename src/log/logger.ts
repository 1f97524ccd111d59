import pino, { type Logger } from 'pino';
import { hostname } from 'node:os';
import { LineWriter } from './line-writer';

export type { Logger };

/**
 * pino, JSON lines on stdout, written in 4 KiB batches by LineWriter. The app flushes
 * every 250 ms, after lifecycle lines and at shutdown; a crash may lose the last
 * quarter-second of log lines, never an audit record (audit does not go through the logger).
 * `authorization` and `cookie` are redacted should a header object ever be logged.
 */
export function createLogger(level: string, destination: number | string = 1): Logger {
  return pino(
    {
      level,
      base: { instance: hostname(), pid: process.pid },
      redact: {
        paths: ['authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'cookie', '*.cookie'],
        censor: '[redacted]',
      },
    },
    new LineWriter(destination),
  );
}

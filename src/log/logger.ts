import pino, { type Logger } from 'pino';
import { hostname } from 'node:os';

export type { Logger };

/**
 * pino, JSON lines, written asynchronously (flushed at shutdown). The gateway logs
 * metadata only; the redaction paths are a second line of defence should a header
 * object ever be logged by mistake.
 */
export function createLogger(level: string, destination: number | string = 1): Logger {
  return pino(
    {
      level,
      base: { instance: hostname(), pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'cookie', '*.cookie'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: destination, sync: false, minLength: 0 }),
  );
}

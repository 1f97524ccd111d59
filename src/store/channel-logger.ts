import pino from 'pino';
import type { Logger } from '../log';
import { LOG_LEVELS, type Channel, type FromStore, type LogLevel, type ToStore } from '../ipc';

/** Fields pino adds itself: the gateway's logger adds its own (time, pid, instance). */
const OWN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/**
 * The store process's logger: every line goes over the channel into the gateway's logger
 * (one stream of log lines, as before the split), where it gains `process: "store"`.
 * With the channel gone (the gateway died, or it is shutting the store down) lines go to
 * stderr as they are.
 */
export function channelLogger(channel: Channel<FromStore, ToStore>, level: string): Logger {
  return pino(
    {
      level,
      base: undefined,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['authorization', '*.authorization', 'cookie', '*.cookie'], censor: '[redacted]' },
    },
    {
      write(line: string) {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          process.stderr.write(line);
          return;
        }
        const lvl = LOG_LEVELS.includes(parsed.level as LogLevel) ? (parsed.level as LogLevel) : 'info';
        const fields: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(parsed)) if (!OWN.has(k)) fields[k] = v;
        if (!channel.send({ t: 'log', level: lvl, fields, msg: String(parsed.msg ?? '') }))
          process.stderr.write(JSON.stringify({ ...parsed, process: 'store', pid: process.pid }) + '\n');
      },
    },
  );
}

import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { closeAfter, responseInProgress } from './connection-state';

/**
 * Descriptors kept back from consumer connections when MAX_CONNECTIONS is not set: the
 * admin port and its probes and scrapes, the audit spool's segments and checkpoint,
 * ClickHouse, the log, the directory watch and Node's own (about 20 at rest).
 */
export const DESCRIPTOR_RESERVE = 128;

/** The soft RLIMIT_NOFILE from /proc/self/limits ("Max open files"), or null when unknown or unlimited. */
export function openFilesLimit(limits: string | null = readLimits()): number | null {
  const match = limits === null ? null : /^Max open files\s+(\S+)/m.exec(limits);
  if (match === null || match[1] === 'unlimited') return null;
  const soft = Number(match[1]);
  return Number.isSafeInteger(soft) && soft > 0 ? soft : null;
}

function readLimits(): string | null {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return null;
  }
}

/**
 * MAX_CONNECTIONS when not set: each consumer connection may hold a provider socket as
 * well, so half of what the reserve leaves (at least 1). Null (no cap) when the limit is unknown.
 */
export function defaultMaxConnections(openFiles: number | null): number | null {
  if (openFiles === null) return null;
  return Math.max(1, Math.floor((openFiles - DESCRIPTOR_RESERVE) / 2));
}

export type RetireReason = 'max_age' | 'tls_reload';

/** Bounds on how often connections are checked against MAX_CONNECTION_AGE_MS (see startAgeLimit). */
const AGE_SWEEP_MIN_MS = 100;
const AGE_SWEEP_MAX_MS = 60_000;

/**
 * The proxy port's open consumer connections (the socket the HTTP layer reads: the
 * TLSSocket on a TLS port), for what must act on connections already open: closing
 * those older than MAX_CONNECTION_AGE_MS, and after a TLS reload those whose client
 * certificate no longer passes the new CA bundle and CRL.
 * A connection is closed once idle: an idle one at once, a busy one after its current
 * response (which says `Connection: close` if it has not started).
 */
export class ConsumerConnections {
  private readonly openedAt = new Map<Socket, number>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly onRetired: (reason: RetireReason, count: number) => void) {}

  get size(): number {
    return this.openedAt.size;
  }

  add(socket: Socket): void {
    this.openedAt.set(socket, Date.now());
    socket.once('close', () => this.openedAt.delete(socket));
  }

  /**
   * Closes, once idle, every connection opened at or before `cutoff` (epoch ms) unless
   * `keep` says otherwise; returns how many.
   */
  retire(cutoff: number, reason: RetireReason, keep?: (socket: Socket) => boolean): number {
    let count = 0;
    for (const [socket, opened] of this.openedAt) {
      if (opened > cutoff || (keep !== undefined && keep(socket))) continue;
      this.openedAt.delete(socket); // acted on once
      count++;
      const res = responseInProgress(socket);
      if (res === null) socket.destroy();
      else closeAfter(res);
    }
    if (count > 0) this.onRetired(reason, count);
    return count;
  }

  /**
   * Checks for connections older than `maxAgeMs` every quarter of it, so one is closed
   * within 25% past its age; never more often than AGE_SWEEP_MIN_MS (the sweep walks every
   * connection) nor less often than AGE_SWEEP_MAX_MS. 0: never.
   */
  startAgeLimit(maxAgeMs: number): void {
    if (maxAgeMs <= 0) return;
    const every = Math.min(AGE_SWEEP_MAX_MS, Math.max(AGE_SWEEP_MIN_MS, Math.floor(maxAgeMs / 4)));
    this.sweeper = setInterval(() => this.retire(Date.now() - maxAgeMs, 'max_age'), every);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

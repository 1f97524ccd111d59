import pino, { type Logger } from 'pino';
import { hostname } from 'node:os';
import type { Transaction } from '../transaction';

/** The destination pino writes to (a LineWriter): transaction lines join the same stream, in order. */
interface LineSink {
  write(line: string): unknown;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * One log line per transaction, metadata only: never the target URL (paths carry
 * patient ids), a query string, a body, a header value or the token.
 *
 * The line is pino's format (level, time, instance, pid, msg) built by hand and appended
 * to pino's destination: every field is a number or a value the gateway validated
 * (ASIDs, GUID, codes, method), except the interaction and endpoint, which are JSON-escaped.
 * pino's generic serialiser cost 6-9 µs a line here, a tenth of a bare proxy's whole
 * request (docs/performance.md); this costs under one.
 */
export function createTransactionLog(root: Logger): (tx: Transaction) => void {
  const sink = (root as unknown as Record<symbol, LineSink>)[pino.symbols.streamSym];
  const prefix = `,"instance":${JSON.stringify(hostname())},"pid":${process.pid},"msg":"transaction"`;
  return function logTransaction(tx: Transaction): void {
    const warn = tx.outcome !== 'forwarded' && tx.outcome !== 'denied';
    if (!root.isLevelEnabled(warn ? 'warn' : 'info')) return;
    let line =
      `{"level":${warn ? 40 : 30},"time":${Date.now()}${prefix}` +
      `,"event_id":"${tx.eventId}","trace_id":"${tx.traceId}"` +
      `,"consumer_asid":"${tx.consumerAsid}","provider_asid":"${tx.providerAsid}"` +
      `,"interaction_id":${JSON.stringify(tx.interactionId)},"method":"${tx.method}"` +
      `,"endpoint":${JSON.stringify(tx.endpoint)},"status":${tx.status},"outcome":"${tx.outcome}"`;
    if (tx.errorCode !== '') line += `,"error_code":"${tx.errorCode}"`;
    if (tx.failureReason !== '') line += `,"failure_reason":"${tx.failureReason}"`;
    line += `,"duration_ms":${round3(tx.durationMs)}`;
    if (tx.upstreamTtfbMs >= 0) line += `,"upstream_ttfb_ms":${round3(tx.upstreamTtfbMs)}`;
    sink.write(`${line},"request_bytes":${tx.requestBytes},"response_bytes":${tx.responseBytes}}\n`);
  };
}

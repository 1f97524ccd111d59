import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/**
 * Load generator (run pinned to its own core). Modes:
 *  fixed  RATE requests/s open loop for SECONDS, paced by a 1 ms timer (no busy loop: it
 *         shares a core with the provider). Request i is due at start + i/RATE and is
 *         timed from then, not from when it was sent: a stall of the sender (its timer,
 *         its event loop busy with replies, the agent's queue) counts against the
 *         latency instead of silently thinning the schedule (no coordinated omission).
 *         Sends never wait for replies, so a slow proxy cannot slow the sender;
 *  closed CONNECTIONS concurrent request loops for SECONDS (fallback when wrk is absent).
 * Prints one JSON line: { requests, errors, seconds, rps, p50Ms, p99Ms } (fixed mode adds sendLagP99Ms).
 */
const url = new URL(process.env.URL!);
const headers = JSON.parse(process.env.HEADERS ?? '{}') as Record<string, string>;
const seconds = Number(process.env.SECONDS ?? 5);
const mode = process.env.MODE ?? 'fixed';
const maxSockets = Number(process.env.CONNECTIONS ?? 32);
// https: TLS_CA verifies the server; TLS_CERT and TLS_KEY are presented as the client certificate.
const tls = url.protocol === 'https:';
const file = (name: string) => (process.env[name] ? readFileSync(process.env[name]!) : undefined);
const agent = tls
  ? new HttpsAgent({ keepAlive: true, maxSockets, ca: file('TLS_CA'), cert: file('TLS_CERT'), key: file('TLS_KEY') })
  : new Agent({ keepAlive: true, maxSockets });
const request = tls ? httpsRequest : httpRequest;
const latencies: number[] = [];
const sendLags: number[] = []; // fixed mode: how late each request left against its schedule (the sender's own delay)
let errors = 0;
/** A request with no complete reply by then counts as an error: every run ends. */
const REQUEST_TIMEOUT_MS = 10_000;

function once(scheduledAt: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) errors++;
        latencies.push(performance.now() - scheduledAt);
        resolve();
      });
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy());
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end();
  });
}

async function fixed(rate: number): Promise<void> {
  const start = performance.now();
  const total = Math.round(rate * seconds);
  const pending: Promise<void>[] = [];
  let sent = 0;
  const interval = 1000 / rate;
  // Bounded: `total` requests, and the loop ends once the last is due (a few ms after SECONDS).
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
    while (sent < due) {
      const scheduledAt = start + sent * interval; // may be a little in the past: the 1 ms timer
      sendLags.push(performance.now() - scheduledAt);
      pending.push(once(scheduledAt));
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
}

async function closed(connections: number): Promise<void> {
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) await once(performance.now());
    }),
  );
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

void (async () => {
  const started = performance.now();
  if (mode === 'fixed') await fixed(Number(process.env.RATE ?? 1000));
  else await closed(Number(process.env.CONNECTIONS ?? 32));
  const elapsed = (performance.now() - started) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const lags = sendLags.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({ requests: sorted.length, errors, seconds: elapsed, rps: sorted.length / elapsed, p50Ms: pct(sorted, 50), p99Ms: pct(sorted, 99), ...(lags.length > 0 ? { sendLagP99Ms: pct(lags, 99) } : {}) })}\n`,
  );
  agent.destroy();
})();

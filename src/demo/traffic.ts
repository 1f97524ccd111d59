import { Agent, request } from 'node:http';
import { refusalCatalogue } from '../errors';
import { chooser, type DemoRequest, type Scenario } from './scenarios';

export interface TrafficOptions {
  readonly host: string;
  readonly proxyPort: number;
  /** Picks a second (a burst counts as one pick). */
  readonly ratePerSecond: number;
  /** Requests in flight at most; a pick over it is skipped and counted. */
  readonly maxInFlight: number;
}

/** The most the demo sends: it is a demonstration, not a load test (npm run bench is). */
export const MAX_RATE_PER_SECOND = 100;
/** Responses are read whole (they are small fixtures) to name the refusal; anything larger is drained past this. */
const MAX_READ_BYTES = 64 * 1024;

/**
 * Sends the mix to the gateway's proxy port at a bounded rate until stopped. Tallies what
 * came back by status and OperationOutcome code (e.g. `403 ASID_CHECK_FAILED_MESSAGESENDER`),
 * the gateway's refusals and providers' errors alike.
 */
export class TrafficGenerator {
  private readonly next: () => Scenario;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private timer: NodeJS.Timeout | null = null;
  /** Requests cut short by stop() are not counted: the demo stopped them, not the gateway. */
  private stopped = false;
  private inFlight = 0;
  private idle: (() => void) | null = null;
  sent = 0;
  skipped = 0;
  readonly tally = new Map<string, number>();

  constructor(
    mix: readonly Scenario[],
    private readonly options: TrafficOptions,
  ) {
    this.next = chooser(mix);
  }

  start(): void {
    const rate = Math.min(Math.max(this.options.ratePerSecond, 0.1), MAX_RATE_PER_SECOND);
    this.timer = setInterval(() => this.tick(), 1000 / rate);
  }

  /** Stops sending; requests still in flight are abandoned (their sockets closed), then it resolves. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
    this.agent.destroy();
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  private tick(): void {
    if (this.inFlight >= this.options.maxInFlight) {
      this.skipped++;
      return;
    }
    for (const req of this.next().make()) this.send(req);
  }

  private send(demo: DemoRequest): void {
    this.inFlight++;
    this.sent++;
    let finished = false;
    // Each request is counted once, however it ends.
    const finish = (key: string) => {
      if (finished) return;
      finished = true;
      if (!this.stopped) this.tally.set(key, (this.tally.get(key) ?? 0) + 1);
      if (--this.inFlight === 0 && this.idle !== null) this.idle();
    };
    const headers: Record<string, string | number> = { ...demo.headers };
    if (demo.body !== undefined) headers['Content-Length'] = demo.body.length;
    const req = request(
      { host: this.options.host, port: this.options.proxyPort, method: demo.method, path: `/${demo.target}`, headers, agent: this.agent },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_READ_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => finish(`${res.statusCode} ${codeOf(res.statusCode ?? 0, Buffer.concat(chunks))}`.trim()));
        res.on('error', () => {});
        res.on('close', () => finish('connection closed mid-response'));
      },
    );
    // The gateway stopping (or the demo's own stop) closes sockets: counted, not fatal.
    req.on('error', (err: NodeJS.ErrnoException) => finish(`no response (${err.code ?? err.message})`));
    req.end(demo.body);
  }
}

/** Longest first, so that a code that begins another is not taken for it. */
const GATEWAY_CODES = Object.keys(refusalCatalogue).sort((a, b) => b.length - a.length);

/**
 * The code of an error response, or '' for a success: a provider's Spine-ErrorOrWarningCode
 * (PATIENT_NOT_FOUND), or for the gateway's own OperationOutcome (whose coding code is the
 * status, as the SSP's is) the refusal code its display begins with.
 */
export function codeOf(status: number, body: Buffer): string {
  if (status < 400) return '';
  let coding: { code?: string; display?: string } | undefined;
  try {
    coding = (JSON.parse(body.toString('utf8')) as { issue?: Array<{ details?: { coding?: Array<{ code?: string; display?: string }> } }> }).issue?.[0]?.details
      ?.coding?.[0];
  } catch {
    return '';
  }
  const code = coding?.code ?? '';
  const display = coding?.display ?? '';
  if (!/^\d+$/.test(code)) return code;
  if (status === 405) return 'METHOD_NOT_ALLOWED';
  if (display.startsWith('ENDPOINT_')) return 'ENDPOINT_VARIES_FROM_TARGETURL';
  return GATEWAY_CODES.find((c) => display.startsWith(c)) ?? display;
}

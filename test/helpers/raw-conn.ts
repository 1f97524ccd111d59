import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CONSUMER_ASID, METADATA, PROVIDER_ASID, type ClientTls } from './test-kit';

/**
 * One raw consumer connection kept open: write bytes when the test says, read what
 * came back so far, wait for a pattern or for the gateway to close it. Bounded in time.
 */
export class RawConnection {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  closed = false;
  readonly whenClosed: Promise<void>;
  readonly whenOpen: Promise<void>;

  constructor(port: number, tls?: ClientTls & { servername?: string }) {
    this.socket = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }) : connect(port, '127.0.0.1');
    this.whenOpen = new Promise((resolve, reject) => {
      this.socket.once(tls ? 'secureConnect' : 'connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('data', (c: Buffer) => this.chunks.push(c));
    this.socket.on('error', () => {});
    this.whenClosed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  /** Waits until the bytes read so far satisfy `done`, or the connection closed, or `ms` passed. */
  async until(done: (text: string) => boolean, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!done(this.text()) && !this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.text();
  }

  /** Waits for the close (true) or `ms` (false). */
  async closes(ms = 3000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([this.whenClosed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
    clearTimeout(timer);
    return closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Valid Ssp-* header lines with a fresh trace id (returned, to find the request's records). */
export function sspLines(traceId = randomUUID()): { traceId: string; lines: string } {
  return {
    traceId,
    lines: `Ssp-TraceID: ${traceId}\r\nSsp-From: ${CONSUMER_ASID}\r\nSsp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${METADATA}\r\n`,
  };
}

/** Status lines in a raw byte stream: how many responses the consumer was sent. */
export function statusLines(raw: string): string[] {
  return raw.match(/HTTP\/1\.1 \d{3} [^\r\n]*\r\n/g) ?? [];
}

/** The OperationOutcome's display code from a raw single response, or '' when there is none. */
export function displayOf(raw: string): string {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  try {
    return JSON.parse(body).issue[0].details.coding[0].display as string;
  } catch {
    return '';
  }
}

/** The transaction lines of a gateway log (one per audit record). */
export function transactionLines(logFile: string): Array<Record<string, unknown>> {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.includes('"msg":"transaction"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Waits until the log holds `count` transaction lines matching `match`, then a little longer to catch an extra one. */
export async function recordsFor(
  logFile: string,
  match: (r: Record<string, unknown>) => boolean,
  count = 1,
  ms = 3000,
): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + ms;
  let rows = transactionLines(logFile).filter(match);
  while (rows.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    rows = transactionLines(logFile).filter(match);
  }
  // The log is flushed every 250 ms: give a second record the chance to show up.
  await new Promise((r) => setTimeout(r, 600));
  return transactionLines(logFile).filter(match);
}

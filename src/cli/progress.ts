import { count } from './table';

/** On a terminal: redrawn at most this often, and first drawn after FIRST_DRAW_MS, so a quick export or verify shows no flicker. */
const REDRAW_MS = 200;
const FIRST_DRAW_MS = 500;
/** To a pipe or file (--progress): one line this often, the first at once. */
const LINE_EVERY_MS = 1000;

/**
 * A progress line on stderr for long exports and verifies: rows so far and the rate. On a
 * terminal it is redrawn in place (at most 5 times a second) and cleared at the end;
 * forced on with --progress to a pipe or file, it is a line every second instead.
 */
export class Progress {
  private readonly started = Date.now();
  private last: number;
  private drawn = false;

  constructor(
    private readonly enabled: boolean,
    private readonly what: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.last = stream.isTTY ? this.started + FIRST_DRAW_MS - REDRAW_MS : 0;
  }

  /** --progress / --no-progress, else on when stderr is a terminal. */
  static wanted(option: boolean | undefined, stream: NodeJS.WriteStream = process.stderr): boolean {
    return option ?? stream.isTTY === true;
  }

  get elapsedMs(): number {
    return Date.now() - this.started;
  }

  /** `rows` so far (null: not known yet, only the time is shown). */
  update(rows: number | null): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < (this.stream.isTTY ? REDRAW_MS : LINE_EVERY_MS)) return;
    this.last = now;
    const seconds = (now - this.started) / 1000;
    const text =
      rows === null
        ? `${this.what}… ${seconds.toFixed(0)} s`
        : `${this.what}: ${count(rows)} rows, ${count(seconds > 0 ? rows / seconds : 0)} rows/s, ${seconds.toFixed(0)} s`;
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[K${text}`);
      this.drawn = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** Clears the line (on a terminal) so the final message stands alone. */
  end(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** rows/s over `ms`, for final messages. */
export function rate(rows: number, ms: number): string {
  return `${count(ms > 0 ? (rows * 1000) / ms : rows)} rows/s`;
}

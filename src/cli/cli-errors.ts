/**
 * The command line's exit statuses (README, "Command line"; the contract's four, plus one
 * for a gateway that answered with a failure of its own). Every failure is one of these
 * errors: the entry point prints its message as one line on stderr and exits with its status.
 */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** `verify` found a break in the audit trail (and only that: scripts may alarm on it). */
  BROKEN: 1,
  /** replay-dead-letters kept a file or could not start (as its script always has). */
  REPLAY_FAILED: 1,
  /** `directory import` or `directory check` found problems (listed on stderr). */
  PROBLEMS: 1,
  /** Bad usage: an unknown option, a bad value, or the API's 400 for a filter. */
  USAGE: 2,
  /** The gateway could not be reached, or it refused the token (401/403). */
  UNREACHABLE: 3,
  /** The gateway answered with a failure of its own (the audit store down, a 5xx, an unreadable answer), or the output could not be written. */
  FAILED: 4,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitStatus: ExitStatus,
    /** Lines printed after the message (e.g. the valid values of a filter), each indented. */
    readonly details: readonly string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string, details: readonly string[] = []) => new CliError(message, EXIT.USAGE, details);
export const unreachableError = (message: string) => new CliError(message, EXIT.UNREACHABLE);
export const failedError = (message: string) => new CliError(message, EXIT.FAILED);

/**
 * The base of the gateway's own errors (spool, store, config, directory): a stable `code`
 * that logs, metrics and callers match on (never the message, which is for people), and a
 * message that names what failed and what to do. A refusal to a consumer is a `Refusal`
 * (src/errors/refusal.ts), not one of these.
 */
export class GatewayError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

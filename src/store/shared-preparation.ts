import type { AuditStore } from '../clickhouse';

/**
 * The audit store's schema preparation (database, migrations, retention), shared by every
 * lane's shipper (README "Processes"): each shipper prepares the store before its first
 * insert, and N of them starting together would otherwise run the migrations N times at
 * once (two ALTERs racing, a migration row written twice) and say "audit store ready" N
 * times. Callers during an attempt share it; a failed attempt is forgotten, so the next
 * call (each shipper retries with its own backoff) tries again; once it has worked, every
 * call answers at once with the same result, and `onPrepared` has been told exactly once.
 */
export class SharedPreparation {
  private attempt: Promise<number[]> | null = null;
  private prepared = false;

  constructor(
    private readonly store: Pick<AuditStore, 'prepare'>,
    private readonly onPrepared: (applied: number[]) => void,
  ) {}

  prepare(): Promise<number[]> {
    this.attempt ??= this.store.prepare().then(
      (applied) => {
        if (!this.prepared) {
          this.prepared = true;
          this.onPrepared(applied);
        }
        return applied;
      },
      (err: unknown) => {
        this.attempt = null;
        throw err;
      },
    );
    return this.attempt;
  }
}

import { lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { lutimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

/** The lock file's name inside DATA_DIR. */
export const LOCK_FILE = 'gateway.lock';

/**
 * A lock from another host cannot be checked by pid, so its holder touches the file this
 * often, and a lock untouched for HOST_STALE_MS counts as left behind. (Generous against
 * clock skew between hosts that share a network volume.)
 */
const HEARTBEAT_MS = 10_000;
const HOST_STALE_MS = 60_000;

/** Who holds a DATA_DIR: enough to tell a live holder from a pid the kernel has reused. */
export interface LockOwner {
  pid: number;
  host: string;
  /** The start of the kernel's boot id (Linux), so a lock from before a reboot is known to be stale. */
  boot?: string;
  /** The holder's start time in clock ticks since boot (Linux /proc/<pid>/stat), so a reused pid is not taken for it. */
  started?: number;
}

/** Another live process holds this DATA_DIR. */
export class DataDirInUseError extends Error {
  readonly code = 'DATA_DIR_IN_USE';
  constructor(
    readonly dataDir: string,
    readonly owner: LockOwner,
  ) {
    const where = owner.host === hostname() ? 'on this host' : `on host ${owner.host}`;
    super(`DATA_DIR ${dataDir} is in use by another gateway (pid ${owner.pid} ${where}): stop that gateway, or give this one another DATA_DIR`);
    this.name = 'DataDirInUseError';
  }
}

/** Lock paths held by this process: a second gateway built in the same process is refused too. */
const heldHere = new Set<string>();

/**
 * One gateway per DATA_DIR. Two processes appending to one spool would interleave and
 * delete each other's segments, and the embedded ClickHouse engine opens its folder
 * once (its own refusal reads "Failed to create connection for path"). So start-up takes
 * `DATA_DIR/gateway.lock` before anything under DATA_DIR is opened, and stopping removes it.
 *
 * The lock is a symbolic link whose target names the holder (`pid:start:boot@host`), as
 * Emacs's lock files are: creating it is atomic and fails if it exists (like O_EXCL), it
 * is never half-written, and a short target needs no data block, so it can be taken on a
 * full disk. A lock left by a process that died (SIGKILL, power loss) is stale and taken
 * over: on this host when its pid is gone or now belongs to a process started at another
 * time (or before a reboot); from another host when it has not been touched for a minute.
 * Node has no flock(), so two gateways that start at the very same moment over one stale
 * lock could both take it; every other case is refused.
 */
export class DataDirLock {
  private heartbeat: NodeJS.Timeout | null = null;

  private constructor(
    readonly path: string,
    private readonly owner: LockOwner,
  ) {}

  /** Takes the lock or throws DataDirInUseError. Start-up only (synchronous file calls). */
  static acquire(dataDir: string): DataDirLock {
    // Created for this user alone (the audit spool, the engine's files, the seal key, the store's socket: README Processes); one that exists is left as it is.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = resolve(join(dataDir, LOCK_FILE));
    const me = currentOwner();
    if (heldHere.has(path)) throw new DataDirInUseError(dataDir, me);
    // Bounded: each pass either takes the lock, refuses, or removes one stale lock.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        symlinkSync(formatOwner(me), path);
        heldHere.add(path);
        const lock = new DataDirLock(path, me);
        lock.startHeartbeat();
        return lock;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readOwner(path);
      if (holder !== null && isAlive(holder, path)) throw new DataDirInUseError(dataDir, holder);
      try {
        unlinkSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw new DataDirInUseError(dataDir, readOwner(path) ?? me);
  }

  /** Removes the lock file if it still names this process. Idempotent. */
  release(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (!heldHere.delete(this.path)) return;
    const holder = readOwner(this.path);
    if (holder === null || holder.pid !== this.owner.pid || holder.started !== this.owner.started) return;
    try {
      unlinkSync(this.path);
    } catch {
      /* gone already; nothing to release */
    }
  }

  private startHeartbeat(): void {
    this.heartbeat = setInterval(() => {
      const now = new Date();
      // A failing disk is the spool's to report; a missed touch only ages the lock.
      lutimes(this.path, now, now).catch(() => undefined);
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }
}

function currentOwner(): LockOwner {
  const owner: LockOwner = { pid: process.pid, host: hostname() };
  const boot = bootId();
  if (boot !== undefined) owner.boot = boot;
  const started = startTicks(process.pid);
  if (started !== undefined) owner.started = started;
  return owner;
}

/** `pid:start:boot@host`: short enough for the link target to live in the inode. */
function formatOwner(owner: LockOwner): string {
  return `${owner.pid}:${owner.started ?? ''}:${owner.boot ?? ''}@${owner.host}`;
}

/** The lock's holder, or null when the lock cannot be read as one (not a link we made). */
function readOwner(path: string): LockOwner | null {
  let target: string;
  try {
    target = readlinkSync(path);
  } catch {
    return null;
  }
  const m = /^(\d{1,10}):(\d*):([0-9a-f]*)@(.+)$/.exec(target);
  if (m === null || Number(m[1]) <= 0) return null;
  const owner: LockOwner = { pid: Number(m[1]), host: String(m[4]) };
  if (m[2] !== '') owner.started = Number(m[2]);
  if (m[3] !== '') owner.boot = m[3];
  return owner;
}

function isAlive(holder: LockOwner, path: string): boolean {
  if (holder.host !== hostname()) {
    try {
      return Date.now() - lstatSync(path).mtimeMs < HOST_STALE_MS;
    } catch {
      return false;
    }
  }
  const boot = bootId();
  if (holder.boot !== undefined && boot !== undefined && holder.boot !== boot) return false;
  // Not held in this process (checked first), so our own pid here is a previous life of
  // this container's entry point.
  if (holder.pid === process.pid) return false;
  if (holder.started !== undefined) {
    const started = startTicks(holder.pid);
    if (started !== undefined) return started === holder.started;
  }
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The first 8 hex digits of the kernel's boot id: enough to tell one boot from the next. */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/-/g, '').trim().slice(0, 8) || undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks after boot); undefined where there is no /proc or no such pid. */
function startTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

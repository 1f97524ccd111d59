import { readdirSync, readFileSync } from 'node:fs';

/**
 * /proc readings for the bench: a process's CPU and RSS, and its descendants (the gateway
 * may start an audit store process, `store-main.js`, as its child). All readings tolerate
 * a process that has just exited: a vanished process reads as absent, never as an error.
 */

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** User + system CPU seconds of the process itself (all its threads), or null once it has gone. */
export function procCpuSeconds(pid: number): number | null {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) may hold spaces and parentheses: fields start after the last ') '.
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident set size (VmRSS) in MiB, or null once the process has gone. */
export function procRssMiB(pid: number): number | null {
  const m = /VmRSS:\s+(\d+) kB/.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) / 1024 : null;
}

/** The cores the process may run on (Cpus_allowed_list), e.g. "0". */
export function procCores(pid: number): string | null {
  const m = /Cpus_allowed_list:\s+(\S+)/.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? m[1] : null;
}

/** The command line, arguments joined by spaces. */
export function procCommand(pid: number): string {
  return (read(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean).join(' ');
}

/** Direct children, from /proc/<pid>/task/<tid>/children (every thread's children). */
export function procChildren(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out = new Set<number>();
  for (const tid of tasks) for (const word of (read(`/proc/${pid}/task/${tid}/children`) ?? '').split(' ')) if (word.trim() !== '') out.add(Number(word));
  return [...out];
}

/** Every descendant, breadth first, bounded (a process tree deeper or wider than this is not the gateway's). */
export function procDescendants(pid: number, limit = 64): number[] {
  const out: number[] = [];
  const queue = procChildren(pid);
  while (queue.length > 0 && out.length < limit) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...procChildren(next));
  }
  return out;
}

/**
 * The product's processes: the proxy (the PID the bench started) and its descendants, the
 * audit store among them (told apart by its command line naming a store script).
 */
export interface ProductProcesses {
  proxy: number;
  /** The audit store process, when the gateway runs one as a child. */
  store: number | null;
  /** Every descendant (the store included). */
  children: number[];
}

/** The store's script (dist/src/store-main.js); any child naming a store script otherwise. */
const STORE_SCRIPT = /[/\\]store-main\.js\b/;
const STORE_COMMAND = /store[^/\\ ]*\.js\b/i;

export function productProcesses(pid: number): ProductProcesses {
  const children = procDescendants(pid);
  const commands = children.map((c) => [c, procCommand(c)] as const);
  const store = commands.find(([, cmd]) => STORE_SCRIPT.test(cmd)) ?? commands.find(([, cmd]) => STORE_COMMAND.test(cmd));
  return { proxy: pid, store: store ? store[0] : null, children };
}

/**
 * CPU seconds of the proxy and of its children, summed over every child seen since the
 * meter started: a child that exits (a store restarted) keeps the CPU last read from it.
 */
export class CpuMeter {
  private proxy0: number;
  private childSeen = new Map<number, { first: number; last: number }>();
  /** False only during the first sample: children already running count from the CPU they had then. */
  private started = false;
  constructor(private readonly pid: number) {
    this.proxy0 = procCpuSeconds(pid) ?? 0;
    this.sample();
    this.started = true;
  }
  /** Reads the children again (call it now and then during a run, so short-lived children are counted). */
  sample(): void {
    for (const c of procDescendants(this.pid)) {
      const cpu = procCpuSeconds(c);
      if (cpu === null) continue;
      const seen = this.childSeen.get(c);
      if (seen) seen.last = cpu;
      // A child born during the run counts from zero: all its CPU was spent in the run.
      else this.childSeen.set(c, { first: this.started ? 0 : cpu, last: cpu });
    }
  }
  /** Seconds used since the meter was made: the proxy process, and its children together. */
  read(): { proxy: number; children: number } {
    this.sample();
    let children = 0;
    for (const s of this.childSeen.values()) children += s.last - s.first;
    return { proxy: (procCpuSeconds(this.pid) ?? this.proxy0) - this.proxy0, children };
  }
}

/** CPU seconds per thread name (/proc/<pid>/task/<tid>/comm), summed over the threads of that name; the main thread as 'main thread'. */
export function threadCpuByName(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    const stat = read(`/proc/${pid}/task/${tid}/stat`);
    // The main thread apart: libuv's pool threads carry the same name as it ('node').
    let comm = Number(tid) === pid ? 'main thread' : (read(`/proc/${pid}/task/${tid}/comm`) ?? '?').trim();
    if (comm === 'node') comm = 'other node threads (libuv pool, V8 helpers)';
    if (stat === null) continue;
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    out.set(comm, (out.get(comm) ?? 0) + (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
  }
  return out;
}

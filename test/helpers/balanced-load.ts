import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { sspHeaders } from './test-kit';

/** One gateway instance as a load balancer sees it: a proxy port, in or out of rotation. */
export interface Backend {
  readonly name: string;
  readonly proxyPort: number;
}

/** One request the "load balancer" sent: where, with which trace ID, and what came back (0: no reply, the connection failed). */
export interface Attempt {
  readonly traceId: string;
  readonly backend: string;
  status: number;
}

export interface BalancedLoad {
  readonly attempts: readonly Attempt[];
  /** Takes a backend out of rotation (its health check failed) or puts it back; requests already sent to it go on. */
  setInRotation(name: string, inRotation: boolean): void;
  /** Stops sending and waits for every request under way to end. */
  stop(): Promise<void>;
}

/**
 * A stand-in for a TCP load balancer in front of several gateway instances: `concurrency`
 * loops, each sending one request at a time, round-robin over the backends in rotation,
 * each request with its own Ssp-TraceID. Bounded in count (`maxRequests`, then the loops
 * stop by themselves); the caller bounds it in time with stop().
 */
export function balancedLoad(
  backends: readonly Backend[],
  target: string,
  options: { concurrency: number; maxRequests: number; outOfRotation?: readonly string[] },
): BalancedLoad {
  const attempts: Attempt[] = [];
  const inRotation = new Set(backends.map((b) => b.name).filter((n) => !options.outOfRotation?.includes(n)));
  // One keep-alive pool per backend, as a balancer keeps connections per upstream.
  const agents = new Map(backends.map((b) => [b.name, new Agent({ keepAlive: true, maxSockets: options.concurrency })]));
  let running = true;
  let next = 0;

  const pick = (): Backend | null => {
    const live = backends.filter((b) => inRotation.has(b.name));
    if (live.length === 0) return null;
    return live[next++ % live.length];
  };

  const one = (backend: Backend) =>
    new Promise<void>((resolve) => {
      const attempt: Attempt = { traceId: randomUUID(), backend: backend.name, status: 0 };
      attempts.push(attempt);
      const req = request(
        `http://127.0.0.1:${backend.proxyPort}/${target}`,
        { headers: sspHeaders({ 'Ssp-TraceID': attempt.traceId }), agent: agents.get(backend.name) },
        (res) => {
          res.resume();
          res.on('end', () => {
            attempt.status = res.statusCode ?? 0;
            resolve();
          });
          res.on('error', () => resolve());
        },
      );
      req.on('error', () => resolve());
      req.end();
    });

  const loops = Array.from({ length: options.concurrency }, async () => {
    while (running && attempts.length < options.maxRequests) {
      const backend = pick();
      if (backend === null) await new Promise((r) => setTimeout(r, 10));
      else await one(backend);
    }
  });

  return {
    attempts,
    setInRotation(name, yes) {
      if (yes) inRotation.add(name);
      else inRotation.delete(name);
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const agent of agents.values()) agent.destroy();
    },
  };
}

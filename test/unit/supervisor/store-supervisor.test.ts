import pino from 'pino';
import { channelPair, type FromStore, type ToStore } from '../../../src/ipc';
import { StoreSupervisor, type StoreProcess, type SupervisorOptions } from '../../../src/supervisor';
import { waitFor } from '../../helpers/test-kit';

/**
 * The supervisor's state machine with stand-in store processes (in-memory channels that
 * "exit" when told): backoff, restart, logging, counting and stop. The real store process
 * under SIGKILL is test/system/store-kill.test.ts.
 */
interface Fake {
  proc: StoreProcess;
  received: ToStore[];
  exit(code: number | null, signal: NodeJS.Signals | null): void;
  killed: NodeJS.Signals[];
}

function harness(overrides: Partial<SupervisorOptions> & { obeyStop?: boolean } = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const fakes: Fake[] = [];
  const startedAt: number[] = [];
  const ups: boolean[] = [];
  let restarts = 0;
  let failNextLaunch = false;
  const launch = (): StoreProcess => {
    if (failNextLaunch) {
      failNextLaunch = false;
      throw Object.assign(new Error('fork failed'), { code: 'EAGAIN' });
    }
    const { a, b } = channelPair<ToStore, FromStore>();
    let done!: (v: { code: number | null; signal: NodeJS.Signals | null }) => void;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => (done = r));
    const fake: Fake = {
      received: [],
      killed: [],
      exit: (code, signal) => {
        b.close();
        done({ code, signal });
      },
      proc: { pid: 1000 + fakes.length, channel: a, exited, kill: (signal) => (fake.killed.push(signal), fake.exit(null, signal)) },
    };
    b.onMessage((m) => {
      fake.received.push(m);
      if (m.t === 'stop' && overrides.obeyStop !== false) setTimeout(() => fake.exit(0, null), 5);
      if (m.t === 'init') b.send({ t: 'ready', applied: [] });
    });
    fakes.push(fake);
    startedAt.push(Date.now());
    return fake.proc;
  };
  const messages: FromStore[] = [];
  const supervisor = new StoreSupervisor({
    launch,
    log,
    init: () => ({ t: 'init', settings: {} as never, publicKeyPem: 'PEM', durableEnd: { segment: 1, offset: 0 }, retainFrom: null, needsRoom: false }),
    onMessage: (m) => {
      messages.push(m);
      throw new Error('a handler that throws must not take the supervisor down');
    },
    onUp: (up) => ups.push(up),
    onRestart: () => restarts++,
    minBackoffMs: 40,
    maxBackoffMs: 160,
    stableMs: 60_000,
    stopTimeoutMs: 200,
    ...overrides,
  });
  return {
    supervisor,
    fakes,
    startedAt,
    lines,
    ups,
    messages,
    restarts: () => restarts,
    failNextLaunch: () => (failNextLaunch = true),
  };
}

const byMsg = (lines: Array<Record<string, unknown>>, re: RegExp) => lines.filter((l) => re.test(String(l.msg)));

test('restarts after every exit with doubling backoff, capped; one line per exit and per start; counted; init each time', async () => {
  const h = harness();
  h.supervisor.start();
  expect(h.supervisor.state).toBe('up');
  await waitFor(() => h.messages.length === 1, 1000, 'ready from the first store');
  const exits: Array<[number | null, NodeJS.Signals | null]> = [
    [null, 'SIGKILL'],
    [1, null],
    [null, 'SIGSEGV'],
    [134, null],
  ];
  const gaps: number[] = [];
  for (let i = 0; i < exits.length; i++) {
    const before = Date.now();
    h.fakes[i].exit(...exits[i]);
    await waitFor(() => h.supervisor.state === 'down', 1000, 'down');
    await waitFor(() => h.fakes.length === i + 2, 2000, `restart ${i + 1}`);
    gaps.push(h.startedAt[i + 1] - before);
  }
  const waits = byMsg(h.lines, /^audit store process exited/).map((l) => l.restart_in_ms);
  expect(waits).toEqual([40, 80, 160, 160]); // doubling, capped at maxBackoffMs
  gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual((waits[i] as number) - 5));
  expect(byMsg(h.lines, /^audit store process exited/).map((l) => [l.code, l.signal])).toEqual(exits);
  expect(byMsg(h.lines, /^audit store process started$/)).toHaveLength(1);
  expect(byMsg(h.lines, /^audit store process restarted$/).map((l) => l.restarts)).toEqual([1, 2, 3, 4]);
  expect(h.restarts()).toBe(4);
  expect(h.supervisor.restarts).toBe(4);
  await waitFor(() => h.fakes.every((f) => f.received.length > 0), 1000, 'init delivered to every store (a later turn)');
  for (const f of h.fakes) expect(f.received[0]).toMatchObject({ t: 'init', publicKeyPem: 'PEM' });
  expect(h.ups).toEqual([true, false, true, false, true, false, true, false, true]);
  await h.supervisor.stop();
});

test('a store that stayed up a while restarts at the first step again', async () => {
  const h = harness({ stableMs: 100 });
  h.supervisor.start();
  h.fakes[0].exit(1, null);
  await waitFor(() => h.fakes.length === 2, 1000, 'restart 1');
  h.fakes[1].exit(1, null); // at once: the step doubles
  await waitFor(() => h.fakes.length === 3, 1000, 'restart 2');
  await new Promise((r) => setTimeout(r, 150)); // stays up past stableMs
  h.fakes[2].exit(1, null);
  await waitFor(() => h.fakes.length === 4, 1000, 'restart 3');
  expect(byMsg(h.lines, /^audit store process exited/).map((l) => l.restart_in_ms)).toEqual([40, 80, 40]);
  await h.supervisor.stop();
});

test('a fork that throws is an exit: retried after the backoff, never thrown', async () => {
  const h = harness();
  h.failNextLaunch();
  expect(() => h.supervisor.start()).not.toThrow();
  expect(h.supervisor.state).toBe('down');
  expect(byMsg(h.lines, /could not be started/)[0]).toMatchObject({ code: 'EAGAIN' });
  await waitFor(() => h.fakes.length === 1, 1000, 'the retry');
  expect(h.supervisor.state).toBe('up');
  await h.supervisor.stop();
});

test('stop: asks the store to stop and waits for it; no restart after', async () => {
  const h = harness();
  h.supervisor.start();
  await h.supervisor.stop();
  expect(h.fakes[0].received.map((m) => m.t)).toEqual(['init', 'stop']);
  expect(h.fakes[0].killed).toEqual([]);
  expect(h.supervisor.state).toBe('stopped');
  expect(h.supervisor.send({ t: 'stop' })).toBe(false);
  await new Promise((r) => setTimeout(r, 100));
  expect(h.fakes).toHaveLength(1);
  expect(byMsg(h.lines, /exited/)).toHaveLength(0);
});

test('stop: a store that does not stop in time is SIGKILLed', async () => {
  const h = harness({ obeyStop: false });
  h.supervisor.start();
  const t0 = Date.now();
  await h.supervisor.stop();
  expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  expect(h.fakes[0].killed).toEqual(['SIGKILL']);
  expect(byMsg(h.lines, /did not stop in time/)).toHaveLength(1);
});

test('stop while it is down between restarts: the pending restart is cancelled', async () => {
  const h = harness({ minBackoffMs: 100 });
  h.supervisor.start();
  h.fakes[0].exit(null, 'SIGKILL');
  await waitFor(() => h.supervisor.state === 'down', 1000, 'down');
  await h.supervisor.stop();
  await new Promise((r) => setTimeout(r, 200));
  expect(h.fakes).toHaveLength(1);
});

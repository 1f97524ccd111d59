import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { channelPair, ipcChannel, RpcClient, StoreCallError, type FromStore, type ToStore } from '../../../src/ipc';
import { tempDir } from '../../helpers/test-kit';

/** The store channel: the in-memory pair behaves as the process channel does, and nothing on it throws. */
describe('channelPair (the in-process seam)', () => {
  test('delivers JSON clones on a later turn, both ways', async () => {
    const { a, b } = channelPair<ToStore, FromStore>();
    const got: ToStore[] = [];
    b.onMessage((m) => got.push(m));
    const message: ToStore = { t: 'durable', segment: 3, offset: 4096 };
    expect(a.send(message)).toBe(true);
    expect(got).toEqual([]); // not synchronously
    message.offset = 1; // the sender's object is not shared
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([{ t: 'durable', segment: 3, offset: 4096 }]);
    const back: FromStore[] = [];
    a.onMessage((m) => back.push(m));
    b.send({ t: 'released', bytes: 10 });
    await new Promise((r) => setImmediate(r));
    expect(back).toEqual([{ t: 'released', bytes: 10 }]);
  });

  test('Infinity cannot cross (JSON): the watermark travels as null', async () => {
    const { a, b } = channelPair<ToStore, FromStore>();
    const got: ToStore[] = [];
    b.onMessage((m) => got.push(m));
    a.send({ t: 'retain', from: null, needsRoom: false });
    await new Promise((r) => setImmediate(r));
    expect(got[0]).toEqual({ t: 'retain', from: null, needsRoom: false });
  });

  test('after close: send says false, nothing is delivered, onClose runs on both ends (also when registered late)', async () => {
    const { a, b } = channelPair<ToStore, FromStore>();
    const closed: string[] = [];
    a.onClose(() => closed.push('a'));
    b.onClose(() => closed.push('b'));
    const got: ToStore[] = [];
    b.onMessage((m) => got.push(m));
    a.send({ t: 'stop' });
    b.close();
    expect(a.send({ t: 'stop' })).toBe(false);
    expect(a.connected).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([]); // the message in flight is lost, as with a dead process
    expect(closed.sort()).toEqual(['a', 'b']);
    let late = false;
    a.onClose(() => (late = true));
    expect(late).toBe(true);
  });
});

describe('ipcChannel (a forked child)', () => {
  test('messages both ways; a send to a child that has exited returns false, never throws (EPIPE, closed channel)', async () => {
    const dir = tempDir('ipc-');
    const script = join(dir, 'echo.js');
    writeFileSync(script, "process.on('message', (m) => { process.send(m); if (m.t === 'stop') process.exit(0); });\n");
    const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    const channel = ipcChannel<ToStore, ToStore>(child);
    const got: ToStore[] = [];
    channel.onMessage((m) => got.push(m));
    let closed = false;
    channel.onClose(() => (closed = true));
    expect(channel.send({ t: 'durable', segment: 1, offset: 2 })).toBe(true);
    expect(channel.send({ t: 'stop' })).toBe(true);
    await new Promise((r) => child.once('exit', r));
    expect(got).toEqual([{ t: 'durable', segment: 1, offset: 2 }, { t: 'stop' }]);
    expect(closed).toBe(true);
    expect(channel.connected).toBe(false);
    expect(() => channel.send({ t: 'stop' })).not.toThrow();
    expect(channel.send({ t: 'stop' })).toBe(false);
    channel.close(); // twice is fine
  });

  test('SIGKILL of the child mid-stream: sends after it fail quietly, the close is told once', async () => {
    const dir = tempDir('ipc-');
    const script = join(dir, 'idle.js');
    writeFileSync(script, "process.on('message', () => {}); setInterval(() => {}, 1000);\n");
    const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    const channel = ipcChannel<ToStore, FromStore>(child);
    let closes = 0;
    channel.onClose(() => closes++);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    for (let i = 0; i < 200; i++) channel.send({ t: 'durable', segment: 1, offset: i });
    await exited;
    await new Promise((r) => setTimeout(r, 50));
    expect(channel.send({ t: 'stop' })).toBe(false);
    expect(closes).toBe(1);
  });
});

describe('RpcClient (seal calls)', () => {
  test('a reply by id resolves its call; an error reply rejects with its code', async () => {
    const sent: Array<{ id: number }> = [];
    const rpc = new RpcClient((m) => (sent.push(m), true), 1000);
    const a = rpc.call<number | null>({ method: 'latestSealPeriod', chain: 'c' });
    const b = rpc.call<void>({ method: 'insertSeals', seals: [] });
    expect(sent.map((m) => m.id)).toEqual([1, 2]);
    rpc.reply({ id: 2, ok: false, code: '210', message: 'connection refused' });
    rpc.reply({ id: 1, ok: true, value: 1234 });
    await expect(a).resolves.toBe(1234);
    await expect(b).rejects.toMatchObject({ code: '210', message: 'connection refused' });
    rpc.reply({ id: 1, ok: true, value: 1 }); // a late duplicate is ignored
    expect(rpc.outstanding).toBe(0);
  });

  test('no store: fails at once; a store that goes: every call under way fails; no answer: times out', async () => {
    const down = new RpcClient(() => false, 1000);
    await expect(down.call({ method: 'latestSealPeriod', chain: 'c' })).rejects.toMatchObject({ code: 'GW_ERR_STORE_DOWN' });
    const rpc = new RpcClient(() => true, 50);
    const pending = rpc.call({ method: 'insertSeals', seals: [] });
    rpc.failAll();
    await expect(pending).rejects.toBeInstanceOf(StoreCallError);
    await expect(rpc.call({ method: 'insertSeals', seals: [] })).rejects.toMatchObject({ code: 'GW_ERR_STORE_TIMEOUT' });
    expect(rpc.outstanding).toBe(0);
  });
});

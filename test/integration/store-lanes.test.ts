import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordIdentity } from '../../src/audit';
import { replayDeadLetters } from '../../src/cli/dead-letter-replay';
import { AuditStore } from '../../src/clickhouse';
import type { FromStore } from '../../src/ipc';
import { decodeRecord, type AuditSpool } from '../../src/spool';
import { finalRows, ofKind, openLane, openSpool, pumpDurable, startStore, writeTransactions, type StoreHarness } from '../helpers/lane-kit';
import { tempDir, waitFor } from '../helpers/test-kit';

/**
 * The audit store's lanes (README "Processes": one per proxy worker's spool), on the real
 * embedded engine: the store service runs in this process over the in-memory channel, and
 * the test plays the gateway (WORKERS=1: lane 0 in `init`) or the cluster primary (lanes
 * opened, closed and replaced by message), with real AuditSpools writing each worker's
 * spool in `workerSpoolDir(DATA_DIR, i)`. chDB opens one data directory at a time per
 * process: each test stops its service (closing the store) before the next starts.
 */

/** Stops the service and waits for its last message (`stopped`): every earlier message has arrived. */
async function stopStore(h: StoreHarness): Promise<void> {
  await h.service.stop();
  await waitFor(() => h.messages.some((m) => m.t === 'stopped'), 10_000, 'the stopped message');
}

async function closeAll(spools: AuditSpool[]): Promise<void> {
  for (const s of spools) await s.close().catch(() => {});
}

/** Waits until every id has its final row (version 2) with FINAL. */
async function allStored(h: StoreHarness, ids: readonly string[], what: string): Promise<void> {
  await waitFor(
    async () => {
      // The table appears once the schema is prepared (the shipper's first step).
      const rows = await finalRows(h.store).catch(() => new Map<string, { version: number }>());
      return ids.every((id) => rows.get(id)?.version === 2);
    },
    90_000,
    what,
    100,
  );
}

/** Releases routed to the spool of the lane they name, as the gateway and the primary route them. */
function routeReleases(h: StoreHarness, spools: AuditSpool[]): void {
  h.to.onMessage((m) => {
    if (m.t === 'released') spools[m.lane ?? 0].writer.released(m.bytes);
  });
}

const laneRefOf = (m: FromStore) => ({ lane: (m as { lane?: number }).lane, gen: (m as { gen?: number }).gen });

test.each([
  ['lane 0 from init (WORKERS=1) and lane 1 from a lane message', true],
  ['both lanes from lane messages (WORKERS=2)', false],
])(
  '%s: every record of both lanes lands once, released comes back to its lane, stats sum',
  async (_name, viaInit) => {
    const dataDir = tempDir('lanes-two-');
    const spools = [await openSpool(dataDir, 0), await openSpool(dataDir, 1)];
    const h = await startStore(dataDir, viaInit ? spools[0] : undefined);
    routeReleases(h, spools);
    const refs = [viaInit ? {} : { lane: 0, gen: 1 }, { lane: 1, gen: 1 }];
    if (!viaInit) openLane(h, 0, 1, spools[0]);
    openLane(h, 1, 1, spools[1]);
    const stopPump = pumpDurable(h, [
      { spool: spools[0], ref: refs[0] },
      { spool: spools[1], ref: refs[1] },
    ]);
    try {
      // Both workers write at once, while both lanes ship into the one store.
      const [ids0, ids1] = await Promise.all([writeTransactions(spools[0], 120), writeTransactions(spools[1], 120)]);
      await allStored(h, [...ids0, ...ids1], 'every transaction of both lanes stored');
      const rows = await finalRows(h.store);
      expect(rows.size).toBe(240);
      expect([...rows.values()].filter((r) => r.rows !== 1)).toEqual([]);
      const written = spools[0].writer.recordsWritten + spools[1].writer.recordsWritten;
      await waitFor(() => ofKind(h.messages, 'stats').some((s) => s.shipped === written), 10_000, 'stats summing both lanes');
      const shippedMessages = ofKind(h.messages, 'shipped').reduce((n, m) => n + m.records, 0);
      expect(shippedMessages).toBe(written);
      await waitFor(() => ofKind(h.messages, 'stats').at(-1)?.oldestUnshippedAt === 0, 10_000, 'nothing unshipped in any lane');
      stopPump();
      await stopStore(h);
      // Routed by lane, the bytes each writer was given back are exactly those deleted from its own spool.
      expect(spools.map((s) => s.writer.recount())).toEqual([0, 0]);
    } finally {
      stopPump();
      await stopStore(h);
      await closeAll(spools);
    }
    // The schema was prepared once for both shippers: one `ready`, one "audit store ready" line.
    expect(ofKind(h.messages, 'ready')).toHaveLength(1);
    expect(ofKind(h.messages, 'log').filter((l) => l.msg === 'audit store ready')).toHaveLength(1);
    expect(ofKind(h.messages, 'laneOpened')).toEqual(
      viaInit
        ? [{ t: 'laneOpened', lane: 1, gen: 1 }]
        : expect.arrayContaining([
            { t: 'laneOpened', lane: 0, gen: 1 },
            { t: 'laneOpened', lane: 1, gen: 1 },
          ]),
    );
    // Segments were deleted in both spools, and each `released` named the lane whose spool it was.
    const released = ofKind(h.messages, 'released');
    const lane0 = released.filter((m) => (m.lane ?? 0) === 0);
    const lane1 = released.filter((m) => m.lane === 1);
    expect(lane0.length).toBeGreaterThan(0);
    expect(lane1.length).toBeGreaterThan(0);
    for (const m of lane0) expect(laneRefOf(m)).toEqual(viaInit ? { lane: undefined, gen: undefined } : { lane: 0, gen: 1 });
    for (const m of lane1) expect(laneRefOf(m)).toEqual({ lane: 1, gen: 1 });
  },
  180_000,
);

test('a worker replaced (laneClose, then lane with a new gen): its successor’s records after the old ones all land once; nothing more for the old gen', async () => {
  const dataDir = tempDir('lanes-gen-');
  const lane0 = await openSpool(dataDir, 0);
  let old: AuditSpool | null = await openSpool(dataDir, 1);
  const spools: AuditSpool[] = [lane0, old];
  const h = await startStore(dataDir, lane0);
  openLane(h, 1, 1, old);
  let stopPump = pumpDurable(h, [{ spool: lane0 }, { spool: old, ref: { lane: 1, gen: 1 } }]);
  try {
    const before = await writeTransactions(old, 80);
    // In flight when the worker dies: begun, never finished (its successor records them `interrupted`).
    const inFlight = await writeTransactions(old, 3, true);
    const ids0 = await writeTransactions(lane0, 20);
    await waitFor(() => ofKind(h.messages, 'shipped').length > 0, 30_000, 'the old worker’s lane shipping');
    stopPump();
    h.to.send({ t: 'laneClose', lane: 1, gen: 1 });
    await old.close();
    old = null;

    const successor = await openSpool(dataDir, 1); // recovery writes the `interrupted` records
    spools.push(successor);
    openLane(h, 1, 2, successor);
    await waitFor(() => h.messages.some((m) => m.t === 'laneOpened' && m.gen === 2), 30_000, 'the new gen opened');
    stopPump = pumpDurable(h, [{ spool: lane0 }, { spool: successor, ref: { lane: 1, gen: 2 } }]);
    const after = await writeTransactions(successor, 80);
    await allStored(h, [...ids0, ...before, ...inFlight, ...after], 'every record of both gens and of lane 0 stored');
    const rows = await finalRows(h.store);
    expect(rows.size).toBe(20 + 80 + 3 + 80);
    expect([...rows.values()].filter((r) => r.rows !== 1)).toEqual([]);
    expect(inFlight.map((id) => rows.get(id)?.outcome)).toEqual(['interrupted', 'interrupted', 'interrupted']);
    // Closed lanes' totals are kept: the stats count what both gens and lane 0 shipped.
    const shipped = ofKind(h.messages, 'shipped').reduce((n, m) => n + m.records, 0);
    await waitFor(() => ofKind(h.messages, 'stats').at(-1)?.shipped === shipped, 10_000, 'stats with the closed gen’s records');
    expect(shipped).toBeGreaterThanOrEqual(lane0.writer.recordsWritten + successor.writer.recordsWritten);
  } finally {
    stopPump();
    await stopStore(h);
    await closeAll(spools);
  }
  const opened = h.messages.findIndex((m) => m.t === 'laneOpened' && m.gen === 2);
  expect(opened).toBeGreaterThan(-1);
  expect(h.messages.slice(opened).filter((m) => laneRefOf(m).gen === 1)).toEqual([]);
  expect(h.messages.filter((m) => m.t === 'laneOpened')).toEqual([
    { t: 'laneOpened', lane: 1, gen: 1 },
    { t: 'laneOpened', lane: 1, gen: 2 },
  ]);
  // The new gen's spool released segments too, tagged with its gen.
  expect(ofKind(h.messages, 'released').filter((m) => m.lane === 1 && m.gen === 2).length).toBeGreaterThan(0);
}, 180_000);

test('a store restart (stop, start on the same DATA_DIR, lanes opened again): every record once, each lane from its own checkpoint', async () => {
  const dataDir = tempDir('lanes-restart-');
  const spools = [await openSpool(dataDir, 0), await openSpool(dataDir, 1)];
  const refs = [
    { lane: 0, gen: 1 },
    { lane: 1, gen: 1 },
  ];
  let h = await startStore(dataDir);
  routeReleases(h, spools);
  openLane(h, 0, 1, spools[0]);
  openLane(h, 1, 1, spools[1]);
  let stopPump = pumpDurable(
    h,
    spools.map((spool, i) => ({ spool, ref: refs[i] })),
  );
  const ids: string[] = [];
  try {
    ids.push(...(await writeTransactions(spools[0], 100)), ...(await writeTransactions(spools[1], 100)));
    await waitFor(() => ofKind(h.messages, 'shipped').length >= 2, 30_000, 'some batches shipped before the restart');
    stopPump();
    await stopStore(h);
    // Written while no store runs.
    ids.push(...(await writeTransactions(spools[0], 50)), ...(await writeTransactions(spools[1], 50)));
    for (const s of spools) expect(readdirSync(join(s.queue.dir)).includes('checkpoint.json')).toBe(true);

    h = await startStore(dataDir);
    routeReleases(h, spools);
    openLane(h, 0, 1, spools[0]);
    openLane(h, 1, 1, spools[1]);
    stopPump = pumpDurable(
      h,
      spools.map((spool, i) => ({ spool, ref: refs[i] })),
    );
    await allStored(h, ids, 'every record after the restart');
    const rows = await finalRows(h.store);
    expect(rows.size).toBe(300);
    expect([...rows.values()].filter((r) => r.rows !== 1 || r.version !== 2)).toEqual([]);
    // Each lane resumed from its own checkpoint: the second store shipped less than everything again.
    const again = ofKind(h.messages, 'shipped').reduce((n, m) => n + m.records, 0);
    expect(again).toBeLessThan(spools[0].writer.recordsWritten + spools[1].writer.recordsWritten);
  } finally {
    stopPump();
    await stopStore(h);
    await closeAll(spools);
  }
}, 180_000);

test('dead letters of two lanes never collide: lane 1 names itself in its files, the replay command finds them all', async () => {
  const dataDir = tempDir('lanes-dead-');
  const spools = [await openSpool(dataDir, 0), await openSpool(dataDir, 1)];
  // No schema management on an empty engine: the database is missing, a permanent error (UNKNOWN_DATABASE).
  const h = await startStore(dataDir, spools[0], { AUDIT_SCHEMA_MANAGEMENT: 'false' });
  openLane(h, 1, 1, spools[1]);
  const stopPump = pumpDurable(h, [{ spool: spools[0] }, { spool: spools[1], ref: { lane: 1, gen: 1 } }]);
  const ids: string[][] = [[], []];
  try {
    // Both lanes dead-letter their first batch at the same spool position (segment 1, offset 0).
    [ids[0], ids[1]] = await Promise.all([writeTransactions(spools[0], 10), writeTransactions(spools[1], 10)]);
    const written = () => spools[0].writer.recordsWritten + spools[1].writer.recordsWritten;
    await waitFor(() => ofKind(h.messages, 'deadLettered').reduce((n, m) => n + m.records, 0) === written(), 30_000, 'every record dead-lettered');
  } finally {
    stopPump();
    await stopStore(h);
    await closeAll(spools);
  }
  const dir = join(dataDir, 'dead-letter');
  const files = readdirSync(dir).sort();
  const lane1Files = files.filter((f) => /^\d+-lane1-\d+-\d+\.seg$/.test(f));
  const lane0Files = files.filter((f) => /^\d+-\d+-\d+\.seg$/.test(f));
  expect(lane0Files.length + lane1Files.length).toBe(files.length);
  const idsIn = (names: string[]) => {
    const found = new Set<string>();
    for (const name of names) {
      const data = readFileSync(join(dir, name));
      for (let offset = 0; ;) {
        const r = decodeRecord(data, offset);
        if (r.kind !== 'record') break;
        found.add(recordIdentity(r.payload).id);
        offset = r.next;
      }
    }
    return [...found].sort();
  };
  expect(idsIn(lane0Files)).toEqual([...ids[0]].sort());
  expect(idsIn(lane1Files)).toEqual([...ids[1]].sort());
  // The log lines say which lane: lane 1's carry `lane`, those of init's lane 0 none (as before lanes).
  const lines = ofKind(h.messages, 'log').filter((l) => l.msg.startsWith('audit batch dead-lettered'));
  const files1 = lines.filter((l) => l.fields.lane === 1).map((l) => l.fields.file);
  const files0 = lines.filter((l) => !('lane' in l.fields)).map((l) => l.fields.file);
  expect(files1.map((f) => String(f).split('/').pop()).sort()).toEqual(lane1Files);
  expect(files0.map((f) => String(f).split('/').pop()).sort()).toEqual(lane0Files);

  // The runbook's replay command finds both lanes' files and brings every record back once.
  const env = { ...process.env };
  const out: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
  try {
    process.env.DATA_DIR = dataDir;
    process.env.AUDIT_SCHEMA_MANAGEMENT = 'true';
    delete process.env.CLICKHOUSE_URL;
    expect(await replayDeadLetters()).toBe(0);
  } finally {
    write.mockRestore();
    process.env = env;
  }
  expect(out.filter((l) => l.startsWith('replayed '))).toHaveLength(files.length);
  expect(readdirSync(dir)).toEqual([]);
  const store = new AuditStore({ url: undefined, dataDir, manageSchema: false, retentionDays: 30, timeoutMs: 30_000 });
  try {
    const rows = await finalRows(store);
    expect(rows.size).toBe(20);
    expect([...ids[0], ...ids[1]].filter((id) => rows.get(id)?.rows !== 1 || rows.get(id)?.version !== 2)).toEqual([]);
  } finally {
    await store.close();
  }
}, 180_000);

test('a lane message before init waits for it; seal calls echo their lane and gen; a laneClose of another gen is ignored', async () => {
  const dataDir = tempDir('lanes-early-');
  const spool = await openSpool(dataDir, 2);
  const ids = await writeTransactions(spool, 30);
  const h = await startStore(dataDir, undefined, {}, (to) => {
    to.send({ t: 'lane', lane: 2, gen: 7, durableEnd: { ...spool.writer.durableEnd }, retainFrom: null, needsRoom: false });
    to.send({ t: 'call', id: 1, method: 'latestSealPeriod', chain: 'no-such-chain', lane: 2, gen: 7 });
  });
  // Not this lane's gen: ignored, the lane goes on.
  h.to.send({ t: 'laneClose', lane: 2, gen: 6 });
  const stopPump = pumpDurable(h, [{ spool, ref: { lane: 2, gen: 7 } }]);
  try {
    await allStored(h, ids, 'the early lane shipped once init came');
    h.to.send({ t: 'call', id: 2, method: 'latestSealPeriod', chain: 'no-such-chain', lane: 2, gen: 7 });
    h.to.send({ t: 'call', id: 3, method: 'latestSealPeriod', chain: 'no-such-chain' });
    // Answered concurrently: in any order.
    await waitFor(() => [2, 3].every((id) => ofKind(h.messages, 'reply').some((r) => r.id === id)), 30_000, 'the replies');
    const replies = ofKind(h.messages, 'reply');
    // The call before init meets a store not initialised yet; it still names its lane and gen.
    expect(replies.find((r) => r.id === 1)).toMatchObject({ lane: 2, gen: 7 });
    expect(replies.find((r) => r.id === 2)).toEqual({ t: 'reply', id: 2, ok: true, value: null, lane: 2, gen: 7 });
    expect(replies.find((r) => r.id === 3)).toEqual({ t: 'reply', id: 3, ok: true, value: null });
    expect(ofKind(h.messages, 'laneOpened')).toEqual([{ t: 'laneOpened', lane: 2, gen: 7 }]);
  } finally {
    stopPump();
    await stopStore(h);
    await closeAll([spool]);
  }
}, 180_000);

import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { directoryYaml, startProvider, waitFor, type TestProvider } from '../helpers/test-kit';
import { logLines, metric, runGateway, tracedRequests, type ChildGateway } from '../helpers/child-gateway';

/**
 * The store deletes acknowledged spool segments and then tells the gateway (`released`),
 * which gives their bytes back under AUDIT_SPOOL_MAX_BYTES. A store killed between the two
 * leaves the gateway counting bytes that are no longer on disk: the spool would reach its
 * cap (and refuse records) early, for good. The gateway counts the spool's bytes anew from
 * disk each time it (re)starts the store.
 *
 * The instant between the unlink and the message is too short to hit from outside, so the
 * test makes the same state: the store is stopped (SIGSTOP) so that it deletes nothing,
 * records fill several segments, the oldest segments are deleted as a store would have, and
 * the store is killed (SIGKILL) before it could say so.
 */
let provider: TestProvider;
let gw: ChildGateway | null = null;

beforeAll(async () => {
  provider = await startProvider((_req, res) => void res.end('{}'));
});
afterAll(async () => {
  if (gw !== null && gw.child.exitCode === null) {
    gw.kill('SIGTERM');
    await gw.exited;
  }
  await provider.close();
});

/** Bytes of the spool's files on disk: the segments and a spare being prepared. */
function diskBytes(spool: string): number {
  let total = 0;
  for (const name of readdirSync(spool))
    if (name.endsWith('.seg') || name === 'next-segment.tmp')
      try {
        total += statSync(join(spool, name)).size;
      } catch {
        /* deleted meanwhile */
      }
  return total;
}

test('a store killed after deleting segments it never reported: the spool bytes are counted anew at its restart', async () => {
  const g = (gw = await runGateway(directoryYaml({ metadata: provider.root }), { AUDIT_SEGMENT_BYTES: '4096', LOG_LEVEL: 'info' }));
  const spool = join(g.dir, 'data', 'spool');
  const target = `${provider.root}/metadata`;
  await waitFor(() => logLines(g, /^audit store process started$/).length === 1, 10_000, 'the store started');
  const storePid = Number(logLines(g, /^audit store process started$/)[0].store_pid);
  await tracedRequests(g, target, 5);
  await waitFor(async () => (await metric(g, 'spine_gateway_audit_spool_bytes')) === diskBytes(spool), 10_000, 'the count matches the disk at first');

  process.kill(storePid, 'SIGSTOP');
  try {
    await tracedRequests(g, target, 40);
    const segments = readdirSync(spool)
      .filter((n) => n.endsWith('.seg'))
      .sort();
    expect(segments.length).toBeGreaterThan(4);
    // What the store would have deleted (the oldest, shipped before it stopped) and not reported.
    for (const name of segments.slice(0, 2)) unlinkSync(join(spool, name));
  } finally {
    process.kill(storePid, 'SIGKILL');
  }
  await waitFor(() => logLines(g, /^audit store process restarted$/).length >= 1, 15_000, 'the store restarted');
  // The count follows the disk again (the restarted store then deletes and reports as usual).
  let counted = NaN;
  let onDisk = NaN;
  await waitFor(
    async () => {
      counted = await metric(g, 'spine_gateway_audit_spool_bytes');
      onDisk = diskBytes(spool);
      return counted === onDisk;
    },
    10_000,
    'the gateway counts the bytes on disk',
  ).catch(() => {
    throw new Error(`the gateway counts ${counted} spool bytes; the disk holds ${onDisk}`);
  });
}, 60_000);

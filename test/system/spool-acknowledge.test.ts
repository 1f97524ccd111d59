import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { searchUntil } from '../helpers/audit-kit';
import { directoryYaml, eventually, send, sspHeaders, startProvider, tempDir, type TestProvider } from '../helpers/test-kit';
import { runGateway, tracedRequests } from '../helpers/child-gateway';

/**
 * A shipped segment is deleted only once no transaction begun in it is still open: start-up
 * recovery needs the begin record of a transaction cut off by a crash, to record it as
 * `interrupted`. The shipper once filed every begin record of a batch under the batch's
 * first segment, so a batch that read on into later segments let those be deleted while
 * they still held the begin record of a transaction in flight; a SIGKILL then left that
 * transaction `in_flight` in the store for ever.
 */
let provider: TestProvider;
/** Trace IDs whose response the provider holds (never released: the gateway is killed first). */
const held = new Set<string>();

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    const id = String(req.headers['ssp-traceid']);
    if (id.startsWith('00000000')) {
      held.add(id);
      res.on('close', () => held.delete(id));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/fhir+json' });
    res.end('{}');
  });
});
afterAll(() => provider.close());

function segmentsHolding(spool: string, text: string): string[] {
  return readdirSync(spool)
    .filter((f) => f.endsWith('.seg'))
    .filter((f) => readFileSync(join(spool, f)).includes(text));
}

test('a batch reading on into later segments keeps the segment with an in-flight begin record; after SIGKILL the transaction is interrupted', async () => {
  const dataDir = tempDir('gw-ack-');
  const spool = join(dataDir, 'spool');
  const yaml = directoryYaml({ metadata: provider.root });
  // Segments of 4 KiB (about two transactions each); the shipper waits 1.5 s between partial batches,
  // so one batch takes in everything sent below: it starts several segments before the long transaction's.
  const env = { DATA_DIR: dataDir, AUDIT_SEGMENT_BYTES: '4096', AUDIT_BATCH_MAX_AGE_MS: '1500', LOG_LEVEL: 'info' };
  const gw = await runGateway(yaml, env);
  let killed = false;
  const long = `00000000-${randomUUID().slice(9)}`;
  let beginSegment: string[] = [];
  let stillOnDisk: string[] = [];
  try {
    await eventually(() => gw.stdout().includes('"audit store ready"'), 30_000, 'the audit store');
    const quick = (n: number) => tracedRequests(gw, `${provider.root}/metadata`, n);
    await quick(8);
    const longReq = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders({ 'Ssp-TraceID': long }), agent: false });
    longReq.on('error', () => {});
    longReq.end();
    await eventually(() => held.has(long), 5000, 'the long transaction to reach the provider');
    const after = await quick(8);
    beginSegment = segmentsHolding(spool, long);
    expect(beginSegment).toHaveLength(1);
    // Everything shipped: the long transaction in flight, and the last quick one.
    await searchUntil(gw.adminPort, `trace_id=${long}`, (rows) => rows.length === 1 && rows[0].outcome === 'in_flight', 20_000);
    await searchUntil(gw.adminPort, `trace_id=${after[after.length - 1]}`, (rows) => rows.length === 1, 20_000);
    // One more shipper turn: it has moved on past the long transaction's segment, deleting what it may.
    await new Promise((r) => setTimeout(r, 2000));
    stillOnDisk = segmentsHolding(spool, long);
    gw.kill('SIGKILL');
    killed = true;
    await gw.exited;
  } finally {
    if (!killed) {
      gw.kill('SIGKILL');
      await gw.exited;
    }
  }
  const again = await runGateway(yaml, env);
  try {
    const rows = await searchUntil(again.adminPort, `trace_id=${long}`, (r) => r.length === 1 && r[0].outcome !== 'in_flight', 20_000).catch(async () => {
      const r = await send(`http://127.0.0.1:${again.adminPort}/audit/transactions?trace_id=${long}`);
      return JSON.parse(r.body.toString()).transactions as Array<Record<string, unknown>>;
    });
    expect(rows.map((r) => r.outcome)).toEqual(['interrupted']);
    // Why: the begin record of a transaction in flight was still on disk when the gateway was killed.
    expect(stillOnDisk).toEqual(beginSegment);
  } finally {
    again.kill('SIGTERM');
    await again.exited;
  }
}, 120_000);

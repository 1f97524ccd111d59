import { encodeAuditRecord, mergeEndFacts, type RecordContext } from '../../src/audit';
import { Transaction } from '../../src/transaction';

/**
 * Issue 13, the final record carrying only the end's facts: its size in the spool and the
 * CPU to encode it (sealed, with a fixed stamp: the sealer's bookkeeping is the same
 * either way), against the complete final record written before; and the store's cost to
 * merge it back into its begin record. CPU time per call (user + system), rounds
 * interleaved, medians.
 *
 * BENCH_ONLY=final-record npm run bench, or node dist/test/bench/final-record.js [transactions per round]
 */
const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.env.ROUNDS ?? 11);
const context: RecordContext = { instance: 'gw-bench-01', environment: 'production' };
const TLS = {
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_256_GCM_SHA384',
  subject: 'CN=consumer.example.nhs.uk',
  issuer: 'CN=NHS Issuing CA',
  serial: '0A1B2C',
  sha256: 'AB:CD:EF',
  hostNames: [],
};

function transaction(): Transaction {
  const tx = new Transaction('GET', '10.1.2.3');
  tx.traceId = '629ea9ba-a077-4d99-b289-7a9b19fd4e03';
  tx.consumerAsid = '200000000359';
  tx.consumerOds = 'FA565';
  tx.providerAsid = '918999198993';
  tx.providerOds = 'A20047';
  tx.interactionId = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
  tx.endpoint = 'https://provider.example.nhs.uk/gpconnect/fhir';
  tx.targetHost = 'provider.example.nhs.uk:443';
  tx.tls = TLS;
  tx.claims = {
    requestingOrganization: 'A1001',
    practitionerId: '111222333444',
    practitionerRole: '444555666777',
    device: 'Consumer product name 5.3.0',
    reasonForRequest: 'directcare',
    requestedScope: 'patient/*.read',
  };
  return tx;
}

function end(tx: Transaction): void {
  tx.finish('forwarded', 200);
  tx.responseBytes = 18_342;
  tx.upstreamTtfbMs = 12.345678;
  tx.upstreamConnectMs = 0;
}

function cpuPerCall(n: number, fn: (i: number) => void): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function finalRecordBench(n = N): void {
  const stamp = { chain: '5f0c3a52-9a43-4bd4-8a31-3f7f5c1de2a1', period: 1_764_000_000_000, seq: 1, hash: '' };
  // As in the gateway: a transaction, its in-flight record (caching the request facts), then its final record.
  const txs = Array.from({ length: 1000 }, () => {
    const tx = transaction();
    encodeAuditRecord(tx, 1, context);
    end(tx);
    return tx;
  });
  let sink = 0;
  const complete = (i: number) => {
    stamp.seq = i + 1;
    sink += encodeAuditRecord(txs[i % 1000], 2, context, stamp).length;
  };
  const endFacts = (i: number) => {
    stamp.seq = i + 1;
    sink += encodeAuditRecord(txs[i % 1000], 3, context, stamp).length;
  };
  const sample = transaction();
  const begin = Buffer.from(encodeAuditRecord(sample, 1, context));
  end(sample);
  const full = Buffer.from(encodeAuditRecord(sample, 2, context, { ...stamp }));
  const facts = Buffer.from(encodeAuditRecord(sample, 3, context, { ...stamp }));
  if (!mergeEndFacts(begin, facts).equals(full)) throw new Error('merge does not give the complete record back');
  const merge = () => {
    sink += mergeEndFacts(begin, facts).length;
  };
  for (let i = 0; i < 50_000; i++) {
    complete(i);
    endFacts(i);
    merge();
  }
  const a: number[] = [];
  const b: number[] = [];
  const m: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(cpuPerCall(n, complete));
    b.push(cpuPerCall(n, endFacts));
    m.push(cpuPerCall(n, merge));
  }
  process.stdout.write(
    `${JSON.stringify({
      transactions: n,
      begin_record_bytes: begin.length,
      final_record_bytes_complete: full.length,
      final_record_bytes_end_facts: facts.length,
      spool_bytes_per_forwarded_transaction_before: begin.length + full.length + 16,
      spool_bytes_per_forwarded_transaction_after: begin.length + facts.length + 16,
      encode_final_sealed_ns_complete: Math.round(median(a)),
      encode_final_sealed_ns_end_facts: Math.round(median(b)),
      encode_saved_ns_paired: Math.round(median(a.map((x, i) => x - b[i]))),
      store_merge_ns: Math.round(median(m)),
      sink: sink % 7,
    })}\n`,
  );
}

if (require.main === module) finalRecordBench();

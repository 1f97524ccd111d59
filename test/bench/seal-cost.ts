import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeAuditRecord, type RecordContext } from '../../src/audit';
import { createLogger } from '../../src/log';
import { Sealer, loadSigningKey, recordsRoot } from '../../src/seal';
import { Transaction } from '../../src/transaction';

/**
 * The CPU the seal writer adds per transaction (README: Tamper evidence; issue budget
 * ≤ 2 µs): encoding the final record sealed (sequence number from the sealer, canonical
 * text built from the transaction, SHA-256) against encoding it unsealed as before, plus
 * the sealer's bookkeeping (next + settled) and the period's share (records_root over the
 * hashes, the signature amortised over a period's records).
 *
 * node dist/test/bench/seal-cost.js [transactions per round, default 200000]
 * FINDINGS=1: each transaction carries two JWT findings and one interaction finding (a
 * consumer in report mode), which the canonical form (version 2) hashes too.
 */
const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const FINDINGS = process.env.FINDINGS === '1';
const JWT_FINDINGS: readonly string[] = Object.freeze(['JWT_EXP_NOT_IAT_PLUS_300', 'JWT_SCOPE_NOT_FOR_INTERACTION']);
const INTERACTION_FINDINGS: readonly string[] = Object.freeze(['INTERACTION_PATH']);
const context: RecordContext = { instance: 'gw-bench-01', environment: 'production' };

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
  tx.claims = {
    requestingOrganization: 'A1001',
    practitionerId: '111222333444',
    practitionerRole: '444555666777',
    device: 'Consumer product name 5.3.0',
    reasonForRequest: 'directcare',
    requestedScope: 'patient/*.read',
  };
  tx.requestBytes = 0;
  tx.responseBytes = 18_342;
  tx.upstreamTtfbMs = 12.345678;
  tx.upstreamConnectMs = 0;
  if (FINDINGS) {
    tx.jwtFindings = JWT_FINDINGS;
    tx.interactionFindings = INTERACTION_FINDINGS;
  }
  tx.finish('forwarded', 200);
  return tx;
}

/** CPU nanoseconds (user + system: what the process spent, not time waiting for a shared core) per call of `fn`. */
function cpuPerCall(n: number, fn: (i: number) => void): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'seal-bench-'));
  try {
    const key = loadSigningKey(undefined, dir);
    const sealer = Sealer.open({ dataDir: dir, key, periodMs: 60_000, instance: context.instance, log: createLogger('silent') });
    sealer.resume([]);
    // As in the gateway: a new transaction each time (it dies young), its in-flight record
    // encoded (which caches the request facts), then its final record, unsealed (A) or sealed (B).
    let sink = 0;
    const unsealedOne = () => {
      const tx = transaction();
      sink += encodeAuditRecord(tx, 1, context).length;
      sink += encodeAuditRecord(tx, 2, context).length;
    };
    const sealedOne = () => {
      const tx = transaction();
      sink += encodeAuditRecord(tx, 1, context).length;
      const stamp = sealer.next(1)!;
      sink += encodeAuditRecord(tx, 2, context, stamp).length;
      sealer.keep(stamp);
      sealer.settled(stamp.seq, true);
    };
    // C: the encoder's part alone (a fixed stamp, no sealer).
    const fixed = { chain: sealer.chain, period: 1_764_000_000_000, seq: 1, hash: '' };
    const encoderOnly = () => {
      const tx = transaction();
      sink += encodeAuditRecord(tx, 1, context).length;
      sink += encodeAuditRecord(tx, 2, context, fixed).length;
    };
    for (let i = 0; i < 50_000; i++) {
      encoderOnly();
      unsealedOne();
      sealedOne();
    }
    const a: number[] = [];
    const b: number[] = [];
    const c: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      a.push(cpuPerCall(N, unsealedOne));
      b.push(cpuPerCall(N, sealedOne));
      c.push(cpuPerCall(N, encoderOnly));
      await sealer.tick(); // seals what has ended (a period of 60 s: usually nothing) and lets the stamps go
    }
    const unsealed = median(a);
    const sealed = median(b);
    // Paired: each round's B minus the A just before it (the machine's load drifts; pairs cancel most of it).
    const added = median(b.map((x, i) => x - a[i]));
    const encoderAdded = median(c.map((x, i) => x - a[i]));
    // The period's share: records_root over its hashes (off the request path, once a period), per record.
    const hex = Array.from({ length: N }, (_, i) => `${i.toString(16).padStart(8, '0')}${'ab'.repeat(28)}`);
    const rootPerRecord = median(Array.from({ length: ROUNDS }, () => cpuPerCall(1, () => void recordsRoot(hex)))) / N;
    process.stdout.write(
      `${JSON.stringify({
        transactions: N,
        findings: FINDINGS,
        transaction_records_unsealed_ns: Math.round(unsealed),
        transaction_records_sealed_ns: Math.round(sealed),
        sealing_added_ns: Math.round(added),
        of_which_encoder_ns: Math.round(encoderAdded),
        records_root_per_record_ns: Math.round(rootPerRecord),
        total_sealing_per_transaction_ns: Math.round(added + rootPerRecord),
        sink: sink % 7,
      })}\n`,
    );
    await sealer.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();

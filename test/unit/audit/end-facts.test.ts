import {
  END_FACTS,
  encodeAuditRecord,
  endFactsAlone,
  endFactsOf,
  interruptedFields,
  mergeEndFacts,
  recordIdentity,
  recordSealOf,
  type RecordFields,
} from '../../../src/audit';
import { Transaction } from '../../../src/transaction';

/** Issue 13: the end-facts final record (version 3) and the store's merge back into the complete record. */
const context = { instance: 'gw "1"', environment: 'test' };
const END_COLUMNS = [
  'event_id',
  'version',
  'completed_at',
  'duration_ms',
  'status',
  'outcome',
  'error_code',
  'failure_reason',
  'request_bytes',
  'response_bytes',
  'upstream_ttfb_ms',
  'upstream_connect_ms',
  'seal_chain',
  'seal_period',
  'seq',
  'record_hash',
];

function tx(text: string, i: number): Transaction {
  const t = new Transaction(i % 2 ? 'POST' : 'GET', '::ffff:127.0.0.1');
  Object.assign(t, {
    traceId: '629ea9ba-a077-4d99-b289-7a9b19fd4e03',
    consumerAsid: '200000000359',
    providerAsid: '918999198993',
    interactionId: `urn:x:${text}`,
    endpoint: `https://gp.example/${text}`,
    environment: i % 3 ? 'live' : '',
  });
  t.claims = {
    requestingOrganization: text,
    practitionerId: 'CANARY-PRACT',
    practitionerRole: 'R',
    device: text,
    reasonForRequest: 'directcare',
    requestedScope: 's',
  };
  t.tls = i % 2 ? { protocol: 'TLSv1.3', cipher: 'C', subject: `CN=${text}`, issuer: 'CN=ca', serial: '01', sha256: 'AB', hostNames: [] } : null;
  if (i % 2) t.jwtFindings = ['JWT_EXPIRED'];
  return t;
}

// Free text that looks like the splice point, quotes, non-ASCII, a lone surrogate.
const TEXTS = ['plain', ',"completed_at":"2026-01-01T00:00:00.000Z","duration_ms":1', 'quote " back \\', 'é 日本 😀', 'lone \ud800', '\u2028'];

test('merged with its begin record, the end facts give back the complete final record byte for byte, sealed or not', () => {
  for (const [i, text] of TEXTS.entries()) {
    for (const sealed of [true, false]) {
      const t = tx(text, i);
      const begin = Buffer.from(encodeAuditRecord(t, 1, context));
      t.finish(i % 2 ? 'upstream_timeout' : 'forwarded', i % 2 ? 504 : 200, i % 2 ? 'UPSTREAM_TIMEOUT' : '');
      t.failureReason = i % 2 ? 'ETIMEDOUT' : '';
      t.responseBytes = 2 ** 40 + i;
      t.upstreamTtfbMs = i % 2 ? -1 : 3.25;
      const seal = () => (sealed ? { chain: '5f0c3a52-9a43-4bd4-8a31-3f7f5c1de2a1', period: 1_764_000_000_000, seq: i + 1, hash: '' } : null);
      const fullSeal = seal();
      const endSeal = seal();
      const full = Buffer.from(encodeAuditRecord(t, 2, context, fullSeal));
      const end = Buffer.from(encodeAuditRecord(t, END_FACTS, context, endSeal));
      expect(endSeal?.hash).toBe(fullSeal?.hash); // hashed over the whole canonical form all the same
      expect(recordIdentity(end)).toEqual({ id: t.eventId, version: 3 });
      expect(Object.keys(JSON.parse(end.toString()) as object)).toEqual(END_COLUMNS);
      expect(end.toString()).not.toContain('CANARY-PRACT');
      expect(end.length).toBeLessThan(full.length / 2);
      expect(recordSealOf(end)).toEqual(recordSealOf(full));
      expect(mergeEndFacts(begin, end).toString()).toBe(full.toString());
    }
  }
});

test("an interrupted record's end facts are what differs from its begin, and merge back into the complete interrupted record", () => {
  const t = tx('x', 1);
  const begin = Buffer.from(encodeAuditRecord(t, 1, context));
  // A begin record of an older layout: no findings, no canonical_form.
  const older = JSON.parse(begin.toString()) as RecordFields;
  for (const k of ['jwt_findings', 'interaction_findings', 'canonical_form']) delete older[k];
  for (const b of [begin, Buffer.from(JSON.stringify(older))]) {
    const full = { ...interruptedFields(b, Date.UTC(2026, 10, 21, 9, 0, 0, 5)), canonical_form: 2, jwt_findings: ['JWT_EXPIRED'], interaction_findings: [] };
    const end = endFactsOf(full, JSON.parse(b.toString()) as RecordFields);
    expect(end).toMatchObject({ event_id: t.eventId, version: END_FACTS, outcome: 'interrupted', error_code: 'GATEWAY_STOPPED' });
    expect(end).not.toHaveProperty('trace_id');
    expect(end).not.toHaveProperty('consumer_asid');
    const merged = JSON.parse(mergeEndFacts(b, Buffer.from(JSON.stringify(end))).toString()) as RecordFields;
    expect(merged).toEqual(full);
  }
});

test('end facts alone (no begin record) become a final record, with received_at from completed_at less the duration', () => {
  const t = tx('y', 0);
  t.finish('forwarded', 200);
  t.durationMs = 1500;
  t.completedAt = Date.UTC(2026, 10, 21, 9, 0, 1, 500);
  const alone = JSON.parse(endFactsAlone(Buffer.from(encodeAuditRecord(t, END_FACTS, context))).toString()) as RecordFields;
  expect(alone).toMatchObject({ event_id: t.eventId, version: 2, outcome: 'forwarded', status: 200, received_at: '2026-11-21T09:00:00.000Z' });
  expect(recordIdentity(Buffer.from(JSON.stringify(alone)))).toEqual({ id: t.eventId, version: 2 });
});

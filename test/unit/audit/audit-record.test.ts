import { encodeAuditRecord, interruptedRecord, isoMillis, recordIdentity, decodeJwtClaims } from '../../../src/audit';
import { Transaction } from '../../../src/transaction';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/test-kit';

function tx(): Transaction {
  const t = new Transaction('POST', '::ffff:127.0.0.1');
  Object.assign(t, {
    traceId: '629ea9ba-a077-4d99-b289-7a9b19fd4e03',
    consumerAsid: '200000000359',
    providerAsid: '918999198993',
    interactionId: 'urn:x:"quoted"\\back',
    endpoint: 'https://gp.example/A1',
  });
  t.finish('forwarded', 201);
  return t;
}

describe('audit record', () => {
  test('is one JSON line with the fixed identity prefix, escaping free text', () => {
    const t = tx();
    const line = encodeAuditRecord(t, 2, { instance: 'host"1', environment: 'test' });
    expect(line).not.toContain('\n');
    const parsed = JSON.parse(line);
    expect(parsed).toMatchObject({
      event_id: t.eventId,
      version: 2,
      interaction_id: 'urn:x:"quoted"\\back',
      status: 201,
      outcome: 'forwarded',
      gateway_instance: 'host"1',
      method: 'POST',
    });
    expect(Object.keys(parsed).slice(0, 2)).toEqual(['event_id', 'version']);
    expect(recordIdentity(Buffer.from(line))).toEqual({ id: t.eventId, version: 2 });
    const begin = JSON.parse(encodeAuditRecord(t, 1, { instance: 'h', environment: 'test' }));
    expect(begin).toMatchObject({ version: 1, outcome: 'in_flight', status: 0, duration_ms: 0 });
  });

  test("an interrupted record keeps the begin record's facts and its identity layout", () => {
    const t = tx();
    const begin = Buffer.from(encodeAuditRecord(t, 1, { instance: 'h', environment: 'test' }));
    const line = interruptedRecord(begin, Date.UTC(2026, 10, 21, 9, 0, 0, 5));
    expect(recordIdentity(Buffer.from(line))).toEqual({ id: t.eventId, version: 2 });
    expect(JSON.parse(line)).toMatchObject({
      outcome: 'interrupted',
      error_code: 'GATEWAY_STOPPED',
      completed_at: '2026-11-21T09:00:00.005Z',
      trace_id: t.traceId,
    });
  });

  test('isoMillis agrees with Date.prototype.toISOString', () => {
    for (let i = 0; i < 2000; i++) {
      const ms = Date.UTC(2026, 0, 1) + Math.floor(Math.random() * 400 * 86_400_000);
      expect(isoMillis(ms)).toBe(new Date(ms).toISOString());
    }
  });

  test('JWT claims: the GP Connect example yields its audit facts; broken tokens yield none', () => {
    const payload = readFileSync(join(FIXTURES, 'jwt', 'jwt-payload-example.json')).toString('base64url');
    expect(decodeJwtClaims(`Bearer eyJhbGciOiJub25lIn0.${payload}.`)).toEqual({
      requestingOrganization: 'A1001',
      practitionerId: '111222333444',
      practitionerRole: '444555666777',
      device: 'Consumer product name 5.3.0',
      reasonForRequest: 'directcare',
      requestedScope: 'patient/*.read',
    });
    for (const bad of [null, 'Basic abc', 'Bearer x', 'Bearer a.!!!.', `Bearer a.${Buffer.from('[1]').toString('base64url')}.`]) {
      expect(decodeJwtClaims(bad).requestingOrganization).toBe('');
    }
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { refuse, refusalCatalogue, renderOperationOutcome, type Refusal, type RefusalCode } from '../../../src/errors';

/** One sample of every refusal the gateway can give, built with the same factories the gateway uses. */
const samples: Refusal[] = [
  refuse.invalidHeader('Ssp-From', 'digits'),
  refuse.endpointVaries('https://gp.example/A1/STU3/1/gpconnect/fhir', 'https://gp.example/B2/Patient/9000000009?identifier=secret', '918999198993'),
  refuse.senderNotAuthorised('200000000359'),
  refuse.receiverNotAuthorised('918999198993'),
  refuse.noAgreement('200000000359', '918999198993'),
  refuse.methodNotAllowed(['GET', 'POST']),
  refuse.malformedHttp(),
  refuse.bodyTooLarge(1000),
  refuse.headersTooLarge(16384),
  refuse.upstreamError('https://gp.example/A1/STU3/1/gpconnect/fhir/Patient?identifier=secret'),
  refuse.upstreamTimeout(30000),
  refuse.auditUnavailable(),
  refuse.rateLimited('consumer', '200000000359', 5, 10, 1),
  refuse.connectionOption('Content-Length'),
  refuse.upgradeNotSupported(),
  refuse.ambiguousPath('a dot-segment'),
  refuse.tooManyHeaders(100),
  refuse.requestTimeout(60000),
  refuse.clientTimeout(30000),
  refuse.jwtRejected(['JWT_EXPIRED', 'JWT_SUB_MISMATCH']),
  refuse.interactionMismatch('urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1', 'GET', '/Slot'),
  refuse.diagnoseNotAvailable(),
  refuse.diagnoseNotAllowed(),
];

/** The README's refusal table: status, stable code and display per row. */
function readmeRows(): Map<string, { status: number; display: string }> {
  const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Refusals'), readme.indexOf('## Operations'));
  const rows = new Map<string, { status: number; display: string }>();
  for (const line of section.split('\n')) {
    const m = /^\| (\d{3}) \| `([A-Z_]+)` \| `([^`]+)` \|/.exec(line);
    if (m) rows.set(m[2], { status: Number(m[1]), display: m[3] });
  }
  return rows;
}

describe('the refusal catalogue', () => {
  test('the samples cover every code', () => {
    expect(new Set(samples.map((s) => s.code))).toEqual(new Set(Object.keys(refusalCatalogue)));
  });

  test('every code has a README row with its status and display form', () => {
    const rows = readmeRows();
    expect([...rows.keys()].sort()).toEqual(Object.keys(refusalCatalogue).sort());
    for (const sample of samples) {
      const row = rows.get(sample.code)!;
      expect(row.status).toBe(sample.status);
      // The README writes variable parts as <...>; the rendered display must fit that pattern.
      const pattern = new RegExp(`^${row.display.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/<[^>]+>/g, '.+')}$`);
      expect(sample.display).toMatch(pattern);
    }
  });

  test.each(samples.map((s) => [s.code, s] as [RefusalCode, Refusal]))('%s renders a valid OperationOutcome in JSON and XML', (_code, refusal) => {
    const json = renderOperationOutcome(refusal, 'json');
    expect(json.contentType).toBe('application/fhir+json; charset=utf-8');
    const oo = JSON.parse(json.body);
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(oo.issue).toHaveLength(1);
    const issue = oo.issue[0];
    expect(issue.code).toBe(refusalCatalogue[refusal.code].issue);
    expect(issue.severity).toBe(refusal.code === 'METHOD_NOT_ALLOWED' ? 'fatal' : 'error');
    expect(issue.details.coding[0].code).toBe(String(refusal.status));
    expect(issue.details.coding[0].display).toBe(refusal.display);
    expect(issue.diagnostics.length).toBeGreaterThan(20);
    // never an echo of a query string
    expect(json.body).not.toContain('secret');
    expect(json.body).not.toMatch(/\n\s+at /); // no stack trace

    const xml = renderOperationOutcome(refusal, 'xml');
    expect(xml.contentType).toBe('application/fhir+xml; charset=utf-8');
    expect(xml.body).toMatch(/^<OperationOutcome xmlns="http:\/\/hl7\.org\/fhir">/);
    expect(xml.body).toContain(`<code value="${refusal.status}"/>`);
    expect(xml.body).not.toContain('secret');
  });

  test('two renders get fresh ids', () => {
    const a = JSON.parse(renderOperationOutcome(samples[0], 'json').body).id;
    const b = JSON.parse(renderOperationOutcome(samples[0], 'json').body).id;
    expect(a).not.toBe(b);
  });

  test('the SSP-shaped refusals match the live SSP examples in shape', () => {
    const fixture = JSON.parse(
      readFileSync(join(__dirname, '..', '..', 'fixtures', 'gpconnect', 'operationoutcome', 'ssp-403-sender-asid-not-authorised.json'), 'utf8'),
    );
    const ours = JSON.parse(renderOperationOutcome(refuse.senderNotAuthorised('100000000001'), 'json').body);
    expect(ours.issue[0].details.coding[0].system).toBe(fixture.issue[0].details.coding[0].system);
    expect(ours.issue[0].details.coding[0].display).toBe(fixture.issue[0].details.coding[0].display);
    expect(ours.issue[0].code).toBe(fixture.issue[0].code);
  });
});

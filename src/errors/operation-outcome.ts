import { randomUUID } from 'node:crypto';
import { refusalCatalogue, SSP_405_SYSTEM, SSP_CODING_SYSTEM } from './refusal-catalogue';
import type { Refusal } from './refusal';

export type OutcomeFormat = 'json' | 'xml';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
export const FHIR_XML = 'application/fhir+xml; charset=utf-8';

/**
 * JSON unless the consumer asks for FHIR XML and not JSON (the contract's default;
 * the live SSP defaults to XML, ssp-reference.md section 3).
 */
export function chooseFormat(accept: string | undefined): OutcomeFormat {
  if (accept === undefined) return 'json';
  return accept.includes('xml') && !accept.includes('json') ? 'xml' : 'json';
}

interface OutcomeFields {
  id: string;
  issueCode: string;
  severity: 'error' | 'fatal';
  system: string;
  code: string;
  display: string;
  diagnostics: string;
}

function fieldsOf(refusal: Refusal): OutcomeFields {
  const entry = refusalCatalogue[refusal.code];
  const is405 = refusal.code === 'METHOD_NOT_ALLOWED';
  return {
    id: randomUUID(),
    issueCode: entry.issue,
    severity: is405 ? 'fatal' : 'error',
    system: is405 ? SSP_405_SYSTEM : SSP_CODING_SYSTEM,
    code: String(entry.status),
    display: refusal.display,
    diagnostics: refusal.diagnostics,
  };
}

function renderJson(f: OutcomeFields): string {
  return JSON.stringify({
    resourceType: 'OperationOutcome',
    id: f.id,
    issue: [
      {
        severity: f.severity,
        code: f.issueCode,
        details: { coding: [{ system: f.system, code: f.code, display: f.display }] },
        diagnostics: f.diagnostics,
      },
    ],
  });
}

const xmlEscapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
function xmlAttr(value: string): string {
  return value.replace(/[&<>"']/g, (c) => xmlEscapes[c]);
}

function renderXml(f: OutcomeFields): string {
  return (
    '<OperationOutcome xmlns="http://hl7.org/fhir">' +
    `<id value="${f.id}"/>` +
    '<issue>' +
    `<severity value="${f.severity}"/>` +
    `<code value="${f.issueCode}"/>` +
    `<details><coding><system value="${xmlAttr(f.system)}"/><code value="${f.code}"/><display value="${xmlAttr(f.display)}"/></coding></details>` +
    `<diagnostics value="${xmlAttr(f.diagnostics)}"/>` +
    '</issue></OperationOutcome>'
  );
}

/** Renders a refusal as a FHIR OperationOutcome body and its Content-Type. */
export function renderOperationOutcome(refusal: Refusal, format: OutcomeFormat): { body: string; contentType: string } {
  const f = fieldsOf(refusal);
  return format === 'xml' ? { body: renderXml(f), contentType: FHIR_XML } : { body: renderJson(f), contentType: FHIR_JSON };
}

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

/**
 * A small GP Connect provider for trying the gateway by hand (README): answers with
 * the public example payloads in test/fixtures/gpconnect. Not part of the product.
 */
const fixtures = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'gpconnect');
const load = (file: string) => readFileSync(join(fixtures, file));
const routes: Array<[string, RegExp, Buffer]> = [
  ['GET', /\/gpconnect\/fhir\/metadata$/, load('foundations/capabilitystatement-foundations-appointments.json')],
  ['GET', /\/gpconnect\/fhir\/Patient$/, load('foundations/patient-search-response.json')],
  ['GET', /\/gpconnect\/fhir\/Slot$/, load('appointments/search-for-free-slots-response.json')],
  ['POST', /\/gpconnect\/fhir\/Appointment$/, load('appointments/book-appointment-response.json')],
  ['POST', /\/structured\/fhir\/Patient\/\$gpc\.getstructuredrecord$/, load('structured/getstructuredrecord-allergies-response.json')],
];
const notFound = load('operationoutcome/provider-404-patient-not-found.json');

const port = Number(process.env.EXAMPLE_PROVIDER_PORT ?? 8081);
createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0];
  const match = routes.find(([method, pattern]) => method === req.method && pattern.test(path));
  req.resume();
  res.writeHead(match ? (req.method === 'POST' ? 201 : 200) : 404, {
    'Content-Type': 'application/fhir+json;charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.end(match ? match[2] : notFound);
}).listen(port, '127.0.0.1', () => {
  process.stdout.write(`example GP Connect provider on http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir\n`);
});

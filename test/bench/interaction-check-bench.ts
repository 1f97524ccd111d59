import { join } from 'node:path';
import { InteractionCheck } from '../../src/check';
import { loadInteractionCatalogue, type Endpoint } from '../../src/directory';

/**
 * BENCH_ONLY=checks npm run bench: the interaction check's cost per request, in process
 * (target: <= 1 us). Every interaction of the shipped INTERACTIONS_FILE, in its right form
 * and in a wrong one (wrong method, another interaction's path, a missing query name),
 * under an endpoint with a path, as the proxy handler calls it after routing.
 */
const ROOT = join(__dirname, '..', '..', '..');
const ITERATIONS = Number(process.env.BENCH_CHECK_ITERATIONS ?? 2_000_000);

const ENDPOINT: Endpoint = {
  url: 'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir',
  origin: 'https://gp.example.nhs.uk',
  protocol: 'https:',
  hostname: 'gp.example.nhs.uk',
  port: 443,
  hostHeader: 'gp.example.nhs.uk',
};
const PREFIX = '/A20047/STU3/1/gpconnect/fhir';

/** A concrete request path for a template: placeholders filled with plausible values. */
function concrete(template: string): string {
  return template
    .replace(/\{&\.\.\.\}/g, '')
    .replace(/\{date\}/g, '2026-12-03')
    .replace(/\?\{params\}/, '?_include=DocumentReference:subject:Patient')
    .replace(/\{system\}\|\{value\}/, 'https://fhir.nhs.uk/Id/nhs-number|9000000009')
    .replace(/\{id\}/g, '9000000009');
}

export function interactionCheckBench(): void {
  const catalogue = loadInteractionCatalogue(join(ROOT, 'config', 'gpconnect-interactions.json'));
  const check = new InteractionCheck(catalogue);
  const ids = [...catalogue];
  const cases: Array<{ name: string; calls: Array<{ id: string; method: string; route: { endpoint: Endpoint; upstreamPath: string } }> }> = [
    { name: 'right form', calls: [] },
    { name: 'wrong form', calls: [] },
  ];
  ids.forEach((id, i) => {
    const entry = catalogue.get(id)!;
    cases[0].calls.push({ id, method: entry.method, route: { endpoint: ENDPOINT, upstreamPath: PREFIX + concrete(entry.path) } });
    const other = catalogue.get(ids[(i + 1) % ids.length])!;
    cases[1].calls.push({ id, method: entry.method === 'GET' ? 'POST' : 'GET', route: { endpoint: ENDPOINT, upstreamPath: PREFIX + concrete(other.path) } });
  });
  for (const c of cases) {
    for (const call of c.calls) {
      const found = check.findings(call.id, call.method, call.route);
      if ((c.name === 'right form') !== (found.length === 0)) throw new Error(`${c.name}: ${call.id} gave [${found.join(', ')}]`);
    }
  }
  process.stdout.write(`\nInteraction check (in process, ${ids.length} interactions, ${ITERATIONS} calls per case, median of 5 rounds):\n`);
  let sink = 0;
  for (const c of cases) {
    const rounds: number[] = [];
    for (let round = 0; round < 6; round++) {
      const n = c.calls.length;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ITERATIONS; i++) {
        const call = c.calls[i % n];
        sink += check.findings(call.id, call.method, call.route).length;
      }
      if (round > 0) rounds.push(Number(process.hrtime.bigint() - t0) / ITERATIONS); // round 0 warms up
    }
    rounds.sort((a, b) => a - b);
    process.stdout.write(`  ${c.name.padEnd(12)} ${rounds[2].toFixed(0).padStart(5)} ns per request (target <= 1000)\n`);
  }
  if (sink < 0) process.stdout.write('unreachable\n');
}

if (require.main === module) interactionCheckBench();

import { exampleToken, inspectJwt, routedJwtFindings, JWT_RULE_CODES } from '../../src/check';
import { NO_CLAIMS, type TransactionClaims } from '../../src/transaction';

/**
 * BENCH_ONLY=jwt npm run bench (or node dist/test/bench/jwt-check-bench.js): the CPU the
 * JWT check costs per request in report mode (README "JWT check"; issue budget ≤ 3 µs).
 *
 * A: what the request path paid for the token before the check: decodeJwtClaims as it
 *    was (the regular expression, base64url, JSON.parse, the claims), copied below.
 * B: what it pays now: inspectJwt (the one decode, the claims and every route-free rule)
 *    plus routedJwtFindings (aud against the endpoint, the interaction's scope).
 * The check's cost is B - A, paired round by round (the machine's load drifts; pairs
 * cancel most of it). Tokens are realistic (the spec's example, about 1.4 KiB) and all
 * different (a new iat each, as GP Connect sends a new token per request): no run of the
 * same string that a cache, or V8, could make cheap.
 */
const N = Number(process.env.BENCH_JWT_CALLS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const ENDPOINT = 'https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/fhir';
const REQUIRED = 'patient/*.read (plus conf/N or conf/R)';

/** decodeJwtClaims before the JWT check (commit 4aaf22b), verbatim but for names: the baseline A. */
function decodeBefore(authorization: string | null): TransactionClaims {
  if (authorization === null || authorization.length > 16_384) return NO_CLAIMS;
  const m = /^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/.exec(authorization);
  if (m === null) return NO_CLAIMS;
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return NO_CLAIMS;
  }
  if (payload === null || typeof payload !== 'object') return NO_CLAIMS;
  const device = payload.requesting_device as { model?: unknown; version?: unknown } | undefined;
  const model = clean(device?.model, 64);
  const version = clean(device?.version, 32);
  return {
    requestingOrganization: identifierValue(payload.requesting_organization, 'https://fhir.nhs.uk/Id/ods-organization-code'),
    practitionerId: identifierValue(payload.requesting_practitioner, 'https://fhir.nhs.uk/Id/sds-user-id') || clean(payload.sub),
    practitionerRole: identifierValue(payload.requesting_practitioner, 'https://fhir.nhs.uk/Id/sds-role-profile-id'),
    device: model && version ? `${model} ${version}` : model,
    reasonForRequest: clean(payload.reason_for_request, 32),
    requestedScope: clean(payload.requested_scope, 128),
  };
}
function clean(value: unknown, max = 128): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) return '';
  return /^[\x20-\x7e]+$/.test(value) ? value : '';
}
function identifierValue(resource: unknown, system: string): string {
  const ids = (resource as { identifier?: unknown } | undefined)?.identifier;
  if (!Array.isArray(ids)) return '';
  const found = (ids as Array<{ system?: unknown; value?: unknown }>).find((i) => i && i.system === system);
  return found ? clean(found.value) : '';
}

/** CPU nanoseconds (user + system) per call of `fn` over `n` calls. */
function cpuPerCall(n: number, fn: (i: number) => void): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function jwtCheckBench(): void {
  const nowS = Math.floor(Date.now() / 1000);
  const POOL = 4096;
  const tokens = Array.from(
    { length: POOL },
    (_, i) => `Bearer ${exampleToken({ aud: ENDPOINT, iatSeconds: nowS - (i % 250), practitionerId: String(10_000 + i) })}`,
  );
  const broken = Array.from(
    { length: POOL },
    (_, i) => `Bearer ${exampleToken({ aud: ENDPOINT, iatSeconds: nowS - 4000 - i, override: { reason_for_request: 'x' } })}`,
  );
  const nowMs = Date.now();
  let sink = 0;
  const before = (i: number) => void (sink += decodeBefore(tokens[i % POOL]).practitionerId.length);
  const now = (i: number) => {
    const inspection = inspectJwt(tokens[i % POOL], nowMs);
    sink += inspection.claims.practitionerId.length + routedJwtFindings(inspection, ENDPOINT, REQUIRED).length;
  };
  const nowBroken = (i: number) => {
    const inspection = inspectJwt(broken[i % POOL], nowMs);
    sink += inspection.claims.practitionerId.length + routedJwtFindings(inspection, ENDPOINT, REQUIRED).length;
  };
  // The findings are right before anything is timed: a fast wrong answer is no result.
  if (routedJwtFindings(inspectJwt(tokens[0], nowMs), ENDPOINT, REQUIRED).length !== 0) throw new Error('the example token has findings');
  if (routedJwtFindings(inspectJwt(broken[0], nowMs), ENDPOINT, REQUIRED).join() !== 'JWT_EXPIRED,JWT_REASON_INVALID')
    throw new Error('the broken token is misjudged');
  for (let i = 0; i < 100_000; i++) {
    before(i);
    now(i);
    nowBroken(i);
  } // warm-up: every path optimised
  const a: number[] = [];
  const b: number[] = [];
  const c: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(cpuPerCall(N, before));
    b.push(cpuPerCall(N, now));
    c.push(cpuPerCall(N, nowBroken));
  }
  // The worst a hostile token can make the decode cost: 8 KiB of nested brackets, within the size bound.
  const hostile = `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('['.repeat(3000) + ']'.repeat(3000)).toString('base64url')}.`;
  const hostileNs = median(Array.from({ length: 5 }, () => cpuPerCall(2000, () => void (sink += inspectJwt(hostile, nowMs).findings.length))));
  const fmt = (ns: number) => `${(ns / 1000).toFixed(2)} µs`;
  process.stdout.write(
    `JWT check, report mode, per request (CPU, median of ${ROUNDS} rounds of ${N}; token ${tokens[0].length} chars, ${JWT_RULE_CODES.length} rules):\n` +
      `  A  before: decodeJwtClaims alone (audit claims, no rules)   ${fmt(median(a))}\n` +
      `  B  now: inspectJwt + routedJwtFindings (claims and rules)  ${fmt(median(b))}\n` +
      `  B - A: what the check adds (paired)                         ${fmt(median(b.map((x, i) => x - a[i])))}   (target <= 3 µs)\n` +
      `  B with a token breaking two rules                            ${fmt(median(c))}\n` +
      `  hostile: ${hostile.length} chars of nested brackets                ${fmt(hostileNs)}\n` +
      `${JSON.stringify({ before_ns: Math.round(median(a)), now_ns: Math.round(median(b)), added_ns: Math.round(median(b.map((x, i) => x - a[i]))), broken_ns: Math.round(median(c)), hostile_ns: Math.round(hostileNs), sink: sink % 7 })}\n`,
  );
}

if (require.main === module) jwtCheckBench();

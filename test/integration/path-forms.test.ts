import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  CONSUMER_ASID,
  FIXTURES,
  METADATA,
  PROVIDER_ASID,
  STRUCTURED,
  TRACE_ID,
  directoryYaml,
  okHandler,
  rawExchange,
  startGateway,
  startProvider,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';

/**
 * Path forms a provider may resolve differently from the gateway.
 * The consumer is accredited for metadata only, at /A20047/STU3/1/gpconnect/fhir; a
 * Tomcat or Spring provider would read `fhir/..;/structured/fhir/metadata` as the
 * structured endpoint next door. Every form is refused with 400 AMBIGUOUS_PATH as an
 * OperationOutcome, audited (the transaction line carries the code), before any TCP
 * connection reaches the provider. Requests go over a raw socket, so no client
 * library normalises them on the way.
 */
let provider: TestProvider;
let gw: RunningGateway;
let ROOT: string;

beforeAll(async () => {
  provider = await startProvider(okHandler());
  ROOT = provider.root;
  gw = await startGateway(directoryYaml({ metadata: ROOT, structured: `http://127.0.0.1:${provider.port}/A20047/STU3/1/gpconnect/structured/fhir` }));
});
afterAll(async () => {
  await gw.stop();
  await provider.close();
});

const CANARY = 'Canary9000000009';

function head(target: string | Buffer, interaction = METADATA): Buffer {
  return Buffer.concat([
    Buffer.from('GET /', 'latin1'),
    typeof target === 'string' ? Buffer.from(target, 'latin1') : target,
    Buffer.from(
      ` HTTP/1.1\r\nHost: gateway.local\r\nSsp-TraceID: ${TRACE_ID}\r\nSsp-From: ${CONSUMER_ASID}\r\nSsp-To: ${PROVIDER_ASID}\r\n` +
        `Ssp-InteractionID: ${interaction}\r\nConnection: close\r\n\r\n`,
      'latin1',
    ),
  ]);
}

function outcomeOf(raw: string): { status: number; display: string; diagnostics: string; type: string } {
  const status = Number(raw.slice(9, 12));
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const type = /\r\ncontent-type: ([^\r]*)/i.exec(raw)?.[1] ?? '';
  try {
    const issue = JSON.parse(body).issue[0];
    return { status, display: issue.details.coding[0].display, diagnostics: issue.diagnostics, type };
  } catch {
    return { status, display: `<no OperationOutcome: ${body.slice(0, 80)}>`, diagnostics: '', type };
  }
}

async function transactionLines(): Promise<Array<Record<string, unknown>>> {
  gw.gateway.log.flush();
  await new Promise((r) => setTimeout(r, 30));
  return readFileSync(gw.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"transaction"'))
    .map((l) => JSON.parse(l));
}

/** [name, the path below the metadata endpoint (after {root}), the form `why` must name] */
const ambiguous: Array<[string, string, RegExp]> = [
  // A segment that is . or .. in any encoding or case, with or without ;parameters
  ["..; (the issue's example)", `/..;/structured/fhir/${CANARY}`, /dot-segment/],
  ['..;x=y', `/..;x=y/structured/fhir/${CANARY}`, /dot-segment/],
  ['.;', `/.;/${CANARY}`, /dot-segment/],
  ['.;jsessionid=1', `/.;jsessionid=1/${CANARY}`, /dot-segment/],
  ['%2e%2e;', `/%2e%2e;/structured/fhir/${CANARY}`, /dot-segment/],
  ['%2E%2E;x', `/%2E%2E;x/structured/fhir/${CANARY}`, /dot-segment/],
  ['.%2e;', `/.%2e;/structured/fhir/${CANARY}`, /dot-segment/],
  ['plain ..', `/../structured/fhir/${CANARY}`, /dot-segment/],
  ['plain .', `/./${CANARY}`, /dot-segment/],
  ['trailing ..', `/${CANARY}/..`, /dot-segment/],
  ['%2e%2e', `/%2e%2e/structured/fhir/${CANARY}`, /dot-segment/],
  ['%2E.', `/%2E./structured/fhir/${CANARY}`, /dot-segment/],
  ['... (Windows trims trailing dots)', `/.../structured/fhir/${CANARY}`, /dot-segment/],
  ['..%20 (Windows trims trailing spaces)', `/..%20/structured/fhir/${CANARY}`, /dot-segment/],
  ['fullwidth dots %ef%bc%8e', `/%ef%bc%8e%ef%bc%8e/structured/fhir/${CANARY}`, /dot-segment/],
  ['one dot leaders %e2%80%a4', `/%e2%80%a4%e2%80%a4/structured/fhir/${CANARY}`, /dot-segment/],
  // Overlong UTF-8, and UTF-8 that is not UTF-8
  ['%c0%ae%c0%ae', `/%c0%ae%c0%ae/structured/fhir/${CANARY}`, /overlong or invalid UTF-8/],
  ['%C0%AE%C0%AE;', `/%C0%AE%C0%AE;/structured/fhir/${CANARY}`, /overlong or invalid UTF-8/],
  ['%e0%80%ae', `/%e0%80%ae%e0%80%ae/structured/fhir/${CANARY}`, /overlong or invalid UTF-8/],
  ['%f0%80%80%ae', `/%f0%80%80%ae%f0%80%80%ae/structured/fhir/${CANARY}`, /overlong or invalid UTF-8/],
  ['%c0%af (overlong /)', `/..%c0%af..%c0%afstructured/${CANARY}`, /overlong or invalid UTF-8/],
  ['%c1%9c (overlong \\)', `/..%c1%9c..%c1%9cstructured/${CANARY}`, /overlong or invalid UTF-8/],
  ['overlong UTF-8 inside a segment', `/Patient/a%c0%aeb${CANARY}`, /overlong or invalid UTF-8/],
  ['a lone continuation byte %80', `/${CANARY}%80`, /overlong or invalid UTF-8/],
  ['%ff', `/${CANARY}%ff`, /overlong or invalid UTF-8/],
  ['a surrogate %ed%a0%80', `/${CANARY}%ed%a0%80`, /overlong or invalid UTF-8/],
  ['a truncated sequence %e2%80', `/${CANARY}%e2%80`, /overlong or invalid UTF-8/],
  // Encoded / \ ; that would change the segment structure; a raw backslash
  ['..%3b', `/..%3b/structured/fhir/${CANARY}`, /encoded \/, \\ or ;/],
  ['..%3B', `/..%3B/structured/fhir/${CANARY}`, /encoded \/, \\ or ;/],
  ['..%2f', `/..%2f..%2fstructured%2f${CANARY}`, /encoded \/, \\ or ;/],
  ['%2F in an id', `/Patient%2F${CANARY}`, /encoded \/, \\ or ;/],
  ['..%5c', `/..%5c..%5cstructured/${CANARY}`, /encoded \/, \\ or ;/],
  ['%5C', `/Patient%5C${CANARY}`, /encoded \/, \\ or ;/],
  ['fullwidth solidus %ef%bc%8f', `/Patient%ef%bc%8f${CANARY}`, /compatibility/],
  ['raw backslash', `/..\\..\\structured\\${CANARY}`, /backslash/],
  ['a ; in an ordinary segment (path parameters)', `/${CANARY};jsessionid=x`, /path parameter/],
  ['%252e%252e (double encoding)', `/%252e%252e/structured/fhir/${CANARY}`, /double-encoded/],
  // Control characters, encoded (raw ones are the parser's: see below)
  ['..%09', `/..%09/structured/fhir/${CANARY}`, /control character/],
  ['%00', `/${CANARY}%00.json`, /control character/],
  ['%0d%0a', `/${CANARY}%0d%0aX-Injected:%20y`, /control character/],
  ['%1F', `/${CANARY}%1F`, /control character/],
  ['%7f', `/${CANARY}%7f`, /control character/],
  // Invalid percent-encoding
  ['%zz', `/meta%zzdata${CANARY}`, /percent-escape/],
  ['a % at the end', `/${CANARY}%`, /percent-escape/],
  ['%2 then the end', `/${CANARY}%2`, /percent-escape/],
  ['%u002e (IIS)', `/%u002e%u002e/structured/${CANARY}`, /percent-escape/],
];

describe('ambiguous path forms are refused with AMBIGUOUS_PATH before any provider connection', () => {
  test.each(ambiguous)('%s', async (_name, below, why) => {
    const before = provider.connections;
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}${below}`));
    const reply = outcomeOf(raw);
    expect(reply).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH', type: 'application/fhir+json; charset=utf-8' });
    expect(reply.diagnostics).toMatch(why);
    expect(raw).not.toContain(CANARY); // the refusal names the form, never the path
    expect(provider.connections).toBe(before);
    expect(provider.connections).toBe(0);
    const lines = await transactionLines();
    expect(lines[lines.length - 1]).toMatchObject({ status: 400, outcome: 'denied', error_code: 'AMBIGUOUS_PATH', trace_id: TRACE_ID });
  });

  test('the check covers the whole path, above the endpoint too', async () => {
    const raw = await rawExchange(gw.proxyPort, head(`http://127.0.0.1:${provider.port}/A20047/STU3/1/gpconnect/structured/..;/fhir/metadata`));
    expect(outcomeOf(raw)).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
    expect(provider.connections).toBe(0);
  });

  test('a POST with a body and HEAD are refused the same way, and the refused body goes nowhere', async () => {
    const body = `{"resourceType":"Parameters","id":"${CANARY}"}`;
    const post = head(`${ROOT}/..;/structured/fhir/Patient/$gpc.getstructuredrecord`, STRUCTURED)
      .toString('latin1')
      .replace('GET ', 'POST ')
      .replace('Connection: close\r\n', `Content-Type: application/fhir+json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n`);
    const raw = await rawExchange(gw.proxyPort, post + body);
    expect(outcomeOf(raw)).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
    const headRaw = await rawExchange(gw.proxyPort, head(`${ROOT}/%2e%2e;/structured/fhir/metadata`).toString('latin1').replace('GET ', 'HEAD '));
    expect(headRaw.slice(0, 12)).toBe('HTTP/1.1 400');
    expect(headRaw.endsWith('\r\n\r\n')).toBe(true); // no body on a HEAD
    expect(provider.connections).toBe(0);
  });

  test('keep-alive: a refused ambiguous path, then a good request on the same connection, reaches the provider once with the good path', async () => {
    const keep = (t: string) => head(t).toString('latin1').replace('Connection: close\r\n', '');
    const raw = await rawExchange(gw.proxyPort, keep(`${ROOT}/..;/structured/fhir/metadata`) + head(`${ROOT}/metadata`).toString('latin1'), 3000);
    const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['400', '200']);
    expect(provider.requests.map((r) => r.url)).toEqual(['/A20047/STU3/1/gpconnect/fhir/metadata']);
    provider.requests.length = 0;
    provider.connections = 0; // later cases count from zero again
  });

  test('control characters in the query are refused too (encoded; the query is otherwise free)', async () => {
    for (const q of ['x=%0d%0aInjected:1', 'x=%00', 'x=a%7F', 'x=%09']) {
      const raw = await rawExchange(gw.proxyPort, head(`${ROOT}/Patient?${q}`));
      expect(outcomeOf(raw)).toMatchObject({ status: 400, display: 'MISSING_OR_INVALID_HEADER' });
      expect(outcomeOf(raw).diagnostics).toMatch(/control character/);
    }
    expect(provider.connections).toBe(0);
  });
});

/** Raw bytes Node's HTTP parser refuses itself: still an OperationOutcome refusal, audited, and no provider connection. */
const parserRefused: Array<[string, Buffer]> = [
  ['raw NUL', Buffer.from([0x2e, 0x2e, 0x00])],
  ['raw SOH', Buffer.from([0x2e, 0x2e, 0x01])],
  ['raw TAB after ..', Buffer.from([0x2e, 0x2e, 0x09])],
  ['raw DEL', Buffer.from([0x2e, 0x2e, 0x7f])],
  ['raw overlong C0 AE', Buffer.from([0xc0, 0xae, 0xc0, 0xae])],
  ['raw fullwidth dot (UTF-8 bytes)', Buffer.from('．．', 'utf8')],
  ['raw space', Buffer.from(' ..', 'latin1')],
];

describe('raw control and non-ASCII bytes in the path', () => {
  test.each(parserRefused)('%s: an OperationOutcome refusal, zero provider connections', async (_name, bytes) => {
    const target = Buffer.concat([Buffer.from(`${ROOT}/`, 'latin1'), bytes, Buffer.from('/structured/fhir/metadata', 'latin1')]);
    const raw = await rawExchange(gw.proxyPort, head(target));
    const reply = outcomeOf(raw);
    expect(reply.status).toBe(400);
    expect(reply.type).toBe('application/fhir+json; charset=utf-8');
    expect(['AMBIGUOUS_PATH', 'MALFORMED_HTTP_REQUEST', 'MISSING_OR_INVALID_HEADER']).toContain(reply.display);
    expect(provider.connections).toBe(0);
    const lines = await transactionLines();
    expect(lines[lines.length - 1]).toMatchObject({ status: 400, outcome: 'denied' });
  });
});

/**
 * Every GP Connect interaction's path (test/fixtures/gpconnect/interactions.json), with
 * sample values, goes through end to end and reaches the provider byte for byte.
 */
interface Interaction {
  id: string;
  method: string;
  path: string;
}

function expand(template: string): string[] {
  const filled = template
    .replace('{id}', '9000000009')
    .replace(/\{date\}/g, '2026-11-21')
    .replace('{&...}', '&searchFilter=https://fhir.nhs.uk/Id/ods-organization-code|A20047')
    .replace('{params}', '_include=DocumentReference:subject:Patient&created=ge2026-01-01&description=referral');
  if (!filled.includes('{system}|{value}')) return [filled];
  // The identifier's | as sent raw, and percent-encoded, as clients variously send it.
  return [
    filled.replace('{system}|{value}', 'https://fhir.nhs.uk/Id/nhs-number|9000000009'),
    filled.replace('{system}|{value}', 'https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9000000009'),
    filled.replace('{system}|{value}', 'https://fhir.nhs.uk/Id/nhs-number%7c9000000009'),
  ];
}

describe('legitimate GP Connect paths still pass end to end', () => {
  let all: TestProvider;
  let open: RunningGateway;
  const interactions = JSON.parse(readFileSync(join(FIXTURES, 'interactions.json'), 'utf8')) as Interaction[];
  const ids = [...new Set(interactions.map((i) => i.id))];

  beforeAll(async () => {
    all = await startProvider(okHandler());
    const dir = `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${ids.join(', ')}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${all.root}
        interactions: [${ids.join(', ')}]
`;
    open = await startGateway(dir);
  });
  afterAll(async () => {
    await open.stop();
    await all.close();
  });

  const cases = interactions.flatMap((i) => expand(i.path).map((p) => [`${i.method} ${p}`, i, p] as [string, Interaction, string]));
  cases.push(
    ['GET /Patient/{id} with a FHIR id holding dots and dashes', { id: ids[1], method: 'GET', path: '' }, '/Patient/a-b.c..d'],
    [
      'GET /metadata?_format=application/fhir+json;charset=utf-8 (a ; in the query)',
      { id: METADATA, method: 'GET', path: '' },
      '/metadata?_format=application/fhir%2Bjson;charset=utf-8',
    ],
    ['GET a query with %2e%2e/ and ..;/ as values (the query is not a path)', { id: METADATA, method: 'GET', path: '' }, '/metadata?x=..;/y&z=%2e%2e%2f'],
  );

  test.each(cases)('%s', async (_name, interaction, path) => {
    const before = all.requests.length;
    const body = interaction.method === 'GET' ? '' : '{"resourceType":"Parameters"}';
    const bytes =
      `${interaction.method} /${all.root}${path} HTTP/1.1\r\nHost: gateway.local\r\nSsp-TraceID: ${TRACE_ID}\r\nSsp-From: ${CONSUMER_ASID}\r\n` +
      `Ssp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${interaction.id}\r\nContent-Type: application/fhir+json\r\n` +
      `${body ? `Content-Length: ${body.length}\r\n` : ''}Connection: close\r\n\r\n${body}`;
    const raw = await rawExchange(open.proxyPort, bytes);
    expect(raw.slice(0, 12)).toBe('HTTP/1.1 200');
    expect(all.requests.length).toBe(before + 1);
    expect(all.requests[all.requests.length - 1].url).toBe(`/A20047/STU3/1/gpconnect/fhir${path}`);
  });

  test('the structured record operation, $gpc.getstructuredrecord, is forwarded as written', async () => {
    const raw = await rawExchange(
      open.proxyPort,
      `POST /${all.root}/Patient/$gpc.getstructuredrecord HTTP/1.1\r\nHost: g\r\nSsp-TraceID: ${TRACE_ID}\r\nSsp-From: ${CONSUMER_ASID}\r\n` +
        `Ssp-To: ${PROVIDER_ASID}\r\nSsp-InteractionID: ${STRUCTURED}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
    );
    expect(raw.slice(0, 12)).toBe('HTTP/1.1 200');
    expect(all.requests[all.requests.length - 1].url).toBe('/A20047/STU3/1/gpconnect/fhir/Patient/$gpc.getstructuredrecord');
  });
});

/**
 * Second pass (attacking the fix): variants of the forms above that a real server may
 * still resolve outside the endpoint. The first group passed the first version of the
 * check and reached the provider:
 * - Windows "best-fit" conversion (ANSI code pages, as PHP, classic ASP and other
 *   non-Unicode Windows stacks use for file names) maps U+2215 division slash and U+2044
 *   fraction slash to "/", U+2216 set minus to "\", U+00A5 yen (cp932) and U+20A9 won
 *   (cp949) to "\"; none of them changes under NFKC;
 * - .NET's and Python's trim() remove U+0085, U+2028 and U+1680, and IDNA-style mapping
 *   drops zero-width and soft-hyphen characters and reads U+3002 as ".";
 * - C1 control characters (%c2%80-%c2%9f) are control characters too;
 * - a proxy in front of the provider that decodes %3F or %23 (nginx does, with rewrite or
 *   a variable in proxy_pass) cuts "..%3f" to "..": a dot name followed by a decoded ?, #,
 *   or an NTFS ":stream" suffix is a dot-segment;
 * - Windows trims trailing dots and spaces repeatedly: ".. ." is "..".
 * A GP Connect path is ASCII (FHIR ids are [A-Za-z0-9-.]), so any non-ASCII character in
 * the path is now refused, whatever it normalises to.
 */
const secondPass: Array<[string, string, RegExp]> = [
  ['%e2%88%95 division slash (best-fit /)', `/..%e2%88%95..%e2%88%95structured%e2%88%95fhir%e2%88%95${CANARY}`, /non-ASCII/],
  ['%e2%81%84 fraction slash (best-fit /)', `/..%e2%81%84..%e2%81%84structured%e2%81%84fhir%e2%81%84${CANARY}`, /non-ASCII/],
  ['%e2%88%96 set minus (best-fit \\)', `/..%e2%88%96..%e2%88%96structured%e2%88%96${CANARY}`, /non-ASCII/],
  ['%c2%a5 yen (cp932 best-fit \\)', `/..%c2%a5..%c2%a5structured%c2%a5${CANARY}`, /non-ASCII/],
  ['%e2%82%a9 won (cp949 best-fit \\)', `/..%e2%82%a9..%e2%82%a9structured%e2%82%a9${CANARY}`, /non-ASCII/],
  ['%e2%a7%b8 big solidus', `/..%e2%a7%b8..%e2%a7%b8structured%e2%a7%b8${CANARY}`, /non-ASCII/],
  ['%e3%80%82 ideographic full stops', `/%e3%80%82%e3%80%82/structured/fhir/${CANARY}`, /non-ASCII/],
  ['..%e2%80%8b (zero-width space)', `/..%e2%80%8b/structured/fhir/${CANARY}`, /non-ASCII/],
  ['%c2%ad.. (soft hyphen)', `/%c2%ad../structured/fhir/${CANARY}`, /non-ASCII/],
  ['..%ef%bb%bf (BOM)', `/..%ef%bb%bf/structured/fhir/${CANARY}`, /non-ASCII/],
  ['..%c2%85 (NEL, trimmed by .NET)', `/..%c2%85/structured/fhir/${CANARY}`, /non-ASCII/],
  ['..%e2%80%a8 (line separator)', `/..%e2%80%a8/structured/fhir/${CANARY}`, /non-ASCII/],
  ['..%e1%9a%80 (ogham space mark)', `/..%e1%9a%80/structured/fhir/${CANARY}`, /non-ASCII/],
  ['..%c2%80 (C1 control)', `/..%c2%80/structured/fhir/${CANARY}`, /non-ASCII/],
  ['.%20. (dot, space, dot)', `/.%20./structured/fhir/${CANARY}`, /dot-segment/],
  ['..%20. (Windows trims ". " then " ")', `/..%20./structured/fhir/${CANARY}`, /dot-segment/],
  ['.+. (form-decoded space between dots)', `/.+./structured/fhir/${CANARY}`, /dot-segment/],
  ['..%3f (a decoding proxy cuts at ?)', `/..%3f/structured/fhir/${CANARY}`, /dot-segment|encoded/],
  ['%2e%2e%3F', `/%2e%2e%3F/structured/fhir/${CANARY}`, /dot-segment|encoded/],
  ['..%23 (a decoding proxy cuts at #)', `/..%23/structured/fhir/${CANARY}`, /dot-segment|encoded/],
  ['..:x (NTFS stream suffix)', `/..:x/structured/fhir/${CANARY}`, /dot-segment/],
  ['..%3a%3a$INDEX_ALLOCATION', `/..%3a%3a$INDEX_ALLOCATION/structured/fhir/${CANARY}`, /dot-segment/],
  // The strongest variants of forms the first version already refused (regressions):
  ['triple encoding %25252e', `/%25252e%25252e/structured/fhir/${CANARY}`, /double-encoded/],
  ['%%32%65 (nested escape)', `/%%32%65%%32%65/structured/fhir/${CANARY}`, /percent-escape/],
  ['%U002E (IIS, upper case)', `/%U002E%U002E/structured/fhir/${CANARY}`, /percent-escape/],
  ['..%00 (Tomcat NUL)', `/..%00/structured/fhir/${CANARY}`, /control character/],
  ['..%0a', `/..%0a/structured/fhir/${CANARY}`, /control character/],
  ['..%0d', `/..%0d/structured/fhir/${CANARY}`, /control character/],
  ['%2e%2E (mixed case)', `/%2e%2E/structured/fhir/${CANARY}`, /dot-segment/],
  ['.%2e', `/.%2e/structured/fhir/${CANARY}`, /dot-segment/],
  ['%2e. then ;jsessionid', `/%2e.;jsessionid=ABC/structured/fhir/${CANARY}`, /dot-segment/],
  ['..;jsessionid with a / in the value', `/..;jsessionid=a/structured/fhir/${CANARY}`, /dot-segment/],
  ['trailing /. (Spring trailing-slash match)', `/${CANARY}/.`, /dot-segment/],
  ['trailing /%2e', `/${CANARY}/%2e`, /dot-segment/],
  ['%3b in upper and lower case', `/..%3B..%3b/structured/fhir/${CANARY}`, /encoded \/, \\ or ;/],
  ['%2f.. right after the endpoint (fhir%2f..)', `%2f..%2fstructured%2ffhir%2f${CANARY}`.replace(/^/, '/x'), /encoded \/, \\ or ;/],
  ['raw \\ and %5c mixed', `/..\\..%5cstructured/${CANARY}`, /backslash|encoded/],
  ['fullwidth reverse solidus %ef%bc%bc', `/..%ef%bc%bc..%ef%bc%bcstructured/${CANARY}`, /compatibility|non-ASCII/],
  ['overlong 3-byte / (%e0%80%af)', `/..%e0%80%af..%e0%80%afstructured/${CANARY}`, /overlong or invalid UTF-8/],
  ['overlong 4-byte / (%f0%80%80%af)', `/..%f0%80%80%af..%f0%80%80%afstructured/${CANARY}`, /overlong or invalid UTF-8/],
  ['overlong 2-byte ; (%c0%bb)', `/..%c0%bb/structured/fhir/${CANARY}`, /overlong or invalid UTF-8/],
  ['5-byte form (%f8%80%80%80%ae)', `/%f8%80%80%80%ae%f8%80%80%80%ae/structured/${CANARY}`, /overlong or invalid UTF-8/],
  ['two-dot leader %e2%80%a5 (NFKC "..")', `/%e2%80%a5/structured/fhir/${CANARY}`, /dot-segment/],
  ['ellipsis %e2%80%a6 (NFKC "...", ".." on Windows)', `/%e2%80%a6/structured/fhir/${CANARY}`, /dot-segment/],
  ['fullwidth ..%ef%bc%9b (fullwidth ;)', `/..%ef%bc%9bx/structured/fhir/${CANARY}`, /dot-segment/],
];

describe('second pass: variants of the ambiguous forms are refused too, with zero provider connections', () => {
  test.each(secondPass)('%s', async (_name, below, why) => {
    const before = provider.connections;
    const seen = provider.requests.length;
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}${below}`));
    const reply = outcomeOf(raw);
    expect(reply).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
    expect(reply.diagnostics).toMatch(why);
    expect(raw).not.toContain(CANARY);
    expect(provider.connections).toBe(before);
    expect(provider.requests.length).toBe(seen);
    const lines = await transactionLines();
    expect(lines[lines.length - 1]).toMatchObject({ status: 400, outcome: 'denied', error_code: 'AMBIGUOUS_PATH' });
  });
});

/**
 * Second pass, the authority and the endpoint boundary: routing compares the target with
 * the registered URL as written, so every other spelling of the same host, port or
 * endpoint is refused (the gateway connects to the registered address, never to the one
 * written, so a spelling can only fail to match, never redirect). Zero provider
 * connections each.
 */
describe('second pass: other spellings of the authority and of the endpoint boundary are refused', () => {
  const spellings = (port: number): Array<[string, string]> => [
    ['userinfo', `http://u@127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['userinfo naming the host', `http://127.0.0.1:${port}@127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['an encoded @', `http://u%40127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['a zero-padded port', `http://127.0.0.1:0${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['an empty port', `http://127.0.0.1:/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['127.1', `http://127.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['a decimal IP', `http://2130706433:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['a hex IP', `http://0x7f.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['an octal IP', `http://0177.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['an IPv4-mapped IPv6 literal', `http://[::ffff:127.0.0.1]:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['a trailing dot in the host', `http://127.0.0.1.:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['localhost', `http://localhost:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['an upper-case scheme', `HTTP://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['https for an http endpoint', `https://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['an IDN host', `http://xn--7ca.127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['a percent-encoded host', `http://%31%32%37.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir/metadata`],
    ['a backslash after the host', `http://127.0.0.1:${port}\\A20047/STU3/1/gpconnect/fhir/metadata`],
    ['/fhirX', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhirX/metadata`],
    ['/fhir.', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir./metadata`],
    ['/fhir.. (nginx alias off-by-slash)', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir../structured/fhir/metadata`],
    ['/fhir;x', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir;x/metadata`],
    ['/fhir%2f..', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir%2f..%2fstructured/fhir/metadata`],
    ['/fhir%3f', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/fhir%3f/../structured`],
    ['/FHIR (case: IIS would match it)', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/FHIR/metadata`],
    ['an encoded letter in the endpoint', `http://127.0.0.1:${port}/A20047/STU3/1/gpconnect/f%68ir/metadata`],
    ['// inside the endpoint', `http://127.0.0.1:${port}/A20047/STU3/1//gpconnect/fhir/metadata`],
    ['the absolute form', `\u0000`],
  ];

  test('each spelling: 400, zero provider connections, and the good spelling still works afterwards', async () => {
    const before = provider.connections;
    const seen = provider.requests.length;
    for (const [name, target] of spellings(provider.port)) {
      const bytes = target === '\u0000' ? head(`${ROOT}/metadata`).toString('latin1').replace('GET /', 'GET ') : head(target);
      const raw = await rawExchange(gw.proxyPort, bytes);
      expect([name, raw.slice(9, 12)]).toEqual([name, '400']);
      expect([name, provider.connections]).toEqual([name, before]);
    }
    expect(provider.requests.length).toBe(seen);
    const ok = await rawExchange(gw.proxyPort, head(`${ROOT}/metadata`));
    expect(ok.slice(9, 12)).toBe('200');
    expect(provider.requests[provider.requests.length - 1].url).toBe('/A20047/STU3/1/gpconnect/fhir/metadata');
  });

  test('Node normalises nothing: what the consumer wrote below the origin is what the provider receives, byte for byte', async () => {
    const below = '/Patient/9000000009/-._~!$&\'()*+,=:@x?a=%2e%2e%2f;b|c%7C{}^`"<>&_format=json';
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}${below}`));
    expect(raw.slice(9, 12)).toBe('200');
    expect(provider.requests[provider.requests.length - 1].url).toBe(`/A20047/STU3/1/gpconnect/fhir${below}`);
  });
});

describe('second pass: a 16 KiB path', () => {
  const long = `/Patient/${'a1-.'.repeat(4096)}`; // one 16 KiB segment, legitimate characters only

  test('over MAX_HEADER_BYTES (default 16 KiB): 431 from the parser, audited, no provider connection', async () => {
    const before = provider.connections;
    const t0 = Date.now();
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}${long}`));
    expect(outcomeOf(raw)).toMatchObject({ status: 431, type: 'application/fhir+json; charset=utf-8' });
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(provider.connections).toBe(before);
    const lines = await transactionLines();
    expect(lines[lines.length - 1]).toMatchObject({ status: 431, outcome: 'denied' });
  });

  test('with MAX_HEADER_BYTES=65536: a legitimate 16 KiB path is forwarded whole, an ambiguous one at its end is refused, both promptly', async () => {
    // The test provider is a stock Node server (16 KiB header limit): this one takes 64 KiB.
    const wide = createServer({ maxHeaderSize: 65_536 }, okHandler());
    const urls: string[] = [];
    let wideConnections = 0;
    wide.on('request', (req: IncomingMessage) => urls.push(req.url ?? ''));
    wide.on('connection', () => wideConnections++);
    await new Promise<void>((resolve) => wide.listen(0, '127.0.0.1', resolve));
    const WIDE = `http://127.0.0.1:${(wide.address() as AddressInfo).port}/A20047/STU3/1/gpconnect/fhir`;
    const big = await startGateway(directoryYaml({ metadata: WIDE }), { MAX_HEADER_BYTES: '65536' });
    try {
      let t0 = Date.now();
      const ok = await rawExchange(big.proxyPort, head(`${WIDE}${long}`));
      expect(ok.slice(9, 12)).toBe('200');
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(urls).toEqual([`/A20047/STU3/1/gpconnect/fhir${long}`]);
      const before = wideConnections;
      for (const tail of ['/..;/x', '/..%e2%88%95x', `/${'%2e'.repeat(2)}`, `/${'.'.repeat(16_000)}`]) {
        t0 = Date.now();
        const raw = await rawExchange(big.proxyPort, head(`${WIDE}${long}${tail}`));
        expect(outcomeOf(raw)).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
        expect(Date.now() - t0).toBeLessThan(1500);
      }
      const many = `${'/a'.repeat(8000)}/..;/x`; // 8,000 segments
      const raw = await rawExchange(big.proxyPort, head(`${WIDE}${many}`));
      expect(outcomeOf(raw)).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
      expect(wideConnections).toBe(before);
      expect(urls).toHaveLength(1);
    } finally {
      await big.stop();
      wide.closeAllConnections();
      await new Promise((r) => wide.close(r));
    }
  });
});

/**
 * Second pass, the path by another route: headers that some provider stacks read as the
 * request's URL or method in place of the request line. IIS's URL Rewrite and
 * ISAPI_Rewrite, older Symfony and Zend/Laminas take the path from X-Original-URL or
 * X-Rewrite-URL; apps behind nginx or Traefik trust X-Original-URI or X-Forwarded-Uri;
 * Spring's ForwardedHeaderFilter and ASP.NET's path base take X-Forwarded-Prefix; Laravel,
 * Express's method-override and ASP.NET Web API take X-HTTP-Method-Override. A consumer
 * accredited for metadata could name the structured endpoint (or DELETE) in one of them
 * while the request line passes every check. Refused with AMBIGUOUS_PATH, zero provider
 * connections; the refusal names the header, never its value.
 */
const overrideHeaders: Array<[string, string]> = [
  ['X-Original-URL', '/A20047/STU3/1/gpconnect/structured/fhir/Patient/Canary9000000009'],
  ['x-original-url', '/A20047/STU3/1/gpconnect/structured/fhir/Patient/Canary9000000009'],
  ['X-Rewrite-URL', '/A20047/STU3/1/gpconnect/structured/fhir/Patient/Canary9000000009'],
  ['X-Original-URI', '/A20047/STU3/1/gpconnect/structured/fhir/Patient/Canary9000000009'],
  ['X-Forwarded-Uri', '/A20047/STU3/1/gpconnect/structured/fhir/Patient/Canary9000000009'],
  ['X-Forwarded-Path', '/A20047/STU3/1/gpconnect/structured/fhir/Patient/Canary9000000009'],
  ['X-Forwarded-Prefix', '/A20047/STU3/1/gpconnect/structured/Canary9000000009'],
  ['X-Envoy-Original-Path', '/A20047/STU3/1/gpconnect/structured/fhir/Patient/Canary9000000009'],
  ['X-HTTP-Method-Override', 'DELETE Canary9000000009'],
  ['X-HTTP-Method', 'DELETE Canary9000000009'],
  ['X-Method-Override', 'DELETE Canary9000000009'],
];

describe('second pass: headers that override the path or method are refused', () => {
  test.each(overrideHeaders)('%s', async (name, value) => {
    const before = provider.connections;
    const seen = provider.requests.length;
    const bytes = head(`${ROOT}/metadata`).toString('latin1').replace('Connection: close\r\n', `${name}: ${value}\r\nConnection: close\r\n`);
    const raw = await rawExchange(gw.proxyPort, bytes);
    const reply = outcomeOf(raw);
    expect(reply).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
    expect(reply.diagnostics.toLowerCase()).toContain(name.toLowerCase());
    expect(raw).not.toContain(CANARY);
    expect(provider.connections).toBe(before);
    expect(provider.requests.length).toBe(seen);
    const lines = await transactionLines();
    expect(lines[lines.length - 1]).toMatchObject({ status: 400, outcome: 'denied', error_code: 'AMBIGUOUS_PATH' });
  });

  test('look-alike names that no stack reads as the URL still pass (X-Original-URL-Note, X-Forwarded-For)', async () => {
    const seen = provider.requests.length;
    const bytes = head(`${ROOT}/metadata`)
      .toString('latin1')
      .replace('Connection: close\r\n', 'X-Original-URL-Note: a\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n');
    const raw = await rawExchange(gw.proxyPort, bytes);
    expect(raw.slice(9, 12)).toBe('200');
    expect(provider.requests.length).toBe(seen + 1);
  });
});

/**
 * Second pass, the host by another route: the gateway sets Host to the registered
 * endpoint's authority, but Spring's ForwardedHeaderFilter, ASP.NET's ForwardedHeaders,
 * Express with "trust proxy", Django's USE_X_FORWARDED_HOST and Symfony's trusted proxies
 * take the host from X-Forwarded-Host or from the first Forwarded element's host=, and a
 * supplier that serves many practices by host name routes by it. A consumer's own
 * X-Forwarded-Host (or Forwarded: host=) arrives before anything the gateway adds, so it
 * would name another practice's endpoint. Refused; a Forwarded line with only for= and
 * proto= (as a consumer's egress proxy may add) still passes.
 */
const hostOverrides: Array<[string, string, string]> = [
  ['X-Forwarded-Host', 'X-Forwarded-Host: b82001.supplier.example', 'X-Forwarded-Host'],
  ['x-forwarded-host, lower case', 'x-forwarded-host: b82001.supplier.example', 'X-Forwarded-Host'],
  ['X-Host', 'X-Host: b82001.supplier.example', 'X-Host'],
  ['X-Original-Host', 'X-Original-Host: b82001.supplier.example', 'X-Original-Host'],
  ['X-Forwarded-Server', 'X-Forwarded-Server: b82001.supplier.example', 'X-Forwarded-Server'],
  ['Forwarded with host=', 'Forwarded: for=10.0.0.1;host=b82001.supplier.example;proto=https', 'Forwarded'],
  ['Forwarded with HOST= in a second element', 'Forwarded: for=10.0.0.1, for=10.0.0.2;HOST="b82001.supplier.example"', 'Forwarded'],
  ['Forwarded with host = (spaces)', 'Forwarded: for=10.0.0.1; host = b82001.supplier.example', 'Forwarded'],
  ['a second Forwarded line with host=', 'Forwarded: for=10.0.0.1\r\nForwarded: host=b82001.supplier.example', 'Forwarded'],
];

describe('second pass: headers that override the host are refused', () => {
  test.each(hostOverrides)('%s', async (_name, line, shown) => {
    const before = provider.connections;
    const seen = provider.requests.length;
    const raw = await rawExchange(
      gw.proxyPort,
      head(`${ROOT}/metadata`).toString('latin1').replace('Connection: close\r\n', `${line}\r\nConnection: close\r\n`),
    );
    const reply = outcomeOf(raw);
    expect(reply).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
    expect(reply.diagnostics).toContain(shown);
    expect(raw).not.toContain('b82001');
    expect(provider.connections).toBe(before);
    expect(provider.requests.length).toBe(seen);
  });

  test('Forwarded with for= and proto= only, and X-Forwarded-For/-Proto, still pass', async () => {
    const seen = provider.requests.length;
    const lines = 'Forwarded: for=10.0.0.1;proto=https;by=hostile\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n';
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}/metadata`).toString('latin1').replace('Connection: close\r\n', `${lines}Connection: close\r\n`));
    expect(raw.slice(9, 12)).toBe('200');
    expect(provider.requests.length).toBe(seen + 1);
  });
});

/**
 * Second pass, the method by the query: Symfony (http_method_override), Laravel and
 * Express's method-override (configured for the query) read a _method parameter as the
 * request's method. PHP's parse_str decodes the name first and turns " ", "." and "[" in
 * it into "_", so ".method", "+method" and "%5Fmethod" are _method there too. Refused like
 * the method-override headers; other parameters that start with _ (FHIR's _format,
 * _include, _count) pass.
 */
const methodParams: Array<[string, string]> = [
  ['_method=DELETE', '_method=DELETE'],
  ['after another parameter', '_format=json&_method=PUT'],
  ['%5Fmethod', '%5Fmethod=DELETE'],
  ['%5fMETHOD', '%5fMETHOD=DELETE'],
  ['.method (PHP reads _method)', '.method=DELETE'],
  ['+_method (PHP drops leading spaces)', '+_method=DELETE'],
  ['%20%20_method', '%20%20_method=DELETE'],
  ['_%6Dethod (an encoded letter)', '_%6Dethod=DELETE'],
  ['[method (PHP reads _method)', '[method=DELETE'],
  ['_method[]', '_method[]=DELETE'],
  ['no value', '_method'],
  ['after a ;', 'a=1;_method=DELETE'],
];

describe('second pass: a _method query parameter is refused', () => {
  test.each(methodParams)('%s', async (_name, query) => {
    const before = provider.connections;
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}/metadata?${query}`));
    const reply = outcomeOf(raw);
    expect(reply).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
    expect(reply.diagnostics).toMatch(/_method/);
    expect(provider.connections).toBe(before);
  });

  test('FHIR parameters that start with _ and names that only contain "method" pass', async () => {
    const seen = provider.requests.length;
    const query = '_format=json&_include=Slot:schedule&_count=1&method=x&x_method=y&_methodx=z&a=_method&+method=1&%7C=%7C&%zz=1';
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}/metadata?${query}`));
    expect(raw.slice(9, 12)).toBe('200');
    expect(provider.requests[seen].url).toBe(`/A20047/STU3/1/gpconnect/fhir/metadata?${query}`);
  });
});

/**
 * Second pass, the query by way of the path: a proxy in front of the provider that decodes
 * %3F or %23 (nginx with rewrite or a variable in proxy_pass) moves what follows into the
 * query or a fragment, so "metadata%3F_method=DELETE" reaches Symfony as a method override
 * and "Patient%3Fidentifier=..." turns a read into a search. An encoded ? or # changes the
 * path's structure like an encoded /, and is refused like one.
 */
describe('second pass: an encoded ? or # in the path is refused', () => {
  test.each([
    ['%3F then _method', `/metadata%3F_method=DELETE`],
    ['%3f then a search', `/Patient%3fidentifier=${CANARY}`],
    ['%23 then anything', `/Patient/${CANARY}%23x`],
    ['%3F at the end', `/metadata%3F`],
  ])('%s', async (_name, below) => {
    const before = provider.connections;
    const raw = await rawExchange(gw.proxyPort, head(`${ROOT}${below}`));
    const reply = outcomeOf(raw);
    expect(reply).toMatchObject({ status: 400, display: 'AMBIGUOUS_PATH' });
    expect(reply.diagnostics).toMatch(/encoded .*\?/);
    expect(raw).not.toContain(CANARY);
    expect(provider.connections).toBe(before);
  });
});

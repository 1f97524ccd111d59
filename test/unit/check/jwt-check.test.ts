import { inspect } from 'node:util';
import { decodeJwtClaims } from '../../../src/audit';
import { JWT_RULE_CODES, JWT_RULES, exampleClaims, exampleToken, inspectJwt, routedJwtFindings, type JwtRule } from '../../../src/check';

/**
 * The JWT check's rules (README "JWT check"), one token per broken rule: each gives
 * exactly its own code, and the spec's example gives none. Times are fixed (NOW) so the
 * boundaries are exact.
 */
const NOW_S = 1_800_000_000;
const NOW = NOW_S * 1000;
const ENDPOINT = 'https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/fhir';
const READ = 'patient/*.read (plus conf/N or conf/R)';

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const NONE_HEADER = b64({ alg: 'none', typ: 'JWT' });
const token = (override: Record<string, unknown> = {}, iatSeconds = NOW_S) => exampleToken({ aud: ENDPOINT, iatSeconds, override });
const bearer = (override: Record<string, unknown> = {}, iatSeconds = NOW_S) => `Bearer ${token(override, iatSeconds)}`;
/** A token with this payload text (any JSON, or not JSON) under the alg-none header. */
const rawPayload = (text: string) => `Bearer ${NONE_HEADER}.${b64(text)}.`;
const withPractitioner = (change: Record<string, unknown>) => {
  const p = { ...(exampleClaims({ aud: ENDPOINT }).requesting_practitioner as Record<string, unknown>), ...change };
  for (const [k, v] of Object.entries(change)) if (v === undefined) delete p[k];
  return bearer({ requesting_practitioner: p });
};
/** The example payload in standard base64 (RFC 4648 4), with a claim that makes it hold both "+" and "/", unpadded. */
function standardBase64Payload(): string {
  for (let pad = 0; pad < 3; pad++) {
    const text = Buffer.from(JSON.stringify({ ...exampleClaims({ aud: ENDPOINT, iatSeconds: NOW_S }), x: `${'.'.repeat(pad)}>>>???>>>???` })).toString(
      'base64',
    );
    if (text.includes('+') && text.includes('/')) return text.replace(/=+$/, '');
  }
  throw new Error('no alignment gives both + and /');
}
const SDS_USER = { system: 'https://fhir.nhs.uk/Id/sds-user-id', value: '111222333444' };
const SDS_ROLE = { system: 'https://fhir.nhs.uk/Id/sds-role-profile-id', value: '444555666777' };

/** The findings, routed to ENDPOINT under an interaction requiring `required`. */
const findingsOf = (authorization: string | null, required: string | null = READ) => routedJwtFindings(inspectJwt(authorization, NOW), ENDPOINT, required);

/** Each rule: tokens that break it and nothing else (routed to ENDPOINT, an interaction requiring patient/*.read). */
const BREAKS_ONLY: Record<JwtRule, Array<[string, string | null]>> = {
  JWT_MISSING: [['no Authorization header', null]],
  JWT_NOT_BEARER: [
    ['Basic credentials', 'Basic dXNlcjpwYXNzd29yZA=='],
    ['another scheme with a good token', `Token ${token()}`],
    ['no space after Bearer', `Bearer${token()}`],
    ['a tab after Bearer', `Bearer\t${token()}`],
    ['a bare token', token()],
  ],
  JWT_TOO_LARGE: [['a token over 8 KiB', bearer({ iss: `https://consumer.example/${'x'.repeat(6200)}` })]],
  JWT_MALFORMED: [
    ['not-a-jwt', 'Bearer not-a-jwt'],
    ['two parts', 'Bearer abc.def'],
    ['Bearer and nothing', 'Bearer'],
    ['a payload that is not JSON', rawPayload('this is not JSON')],
    ['a payload that is a JSON array', rawPayload('[1,2]')],
    ['a payload that is JSON null', rawPayload('null')],
    ['a header that is not JSON', `Bearer ${b64('nope')}.${b64(exampleClaims({ aud: ENDPOINT, iatSeconds: NOW_S }))}.`],
    ['four parts', `Bearer ${token()}.`],
    ['padding', `Bearer ${NONE_HEADER}.${b64(exampleClaims({ aud: ENDPOINT, iatSeconds: NOW_S }))}==.`],
    ['standard base64 (+ and /)', `Bearer ${NONE_HEADER}.${standardBase64Payload()}.`],
    [
      'a character outside base64url in the payload',
      `Bearer ${NONE_HEADER}.${b64(exampleClaims({ aud: ENDPOINT, iatSeconds: NOW_S })).replace(/^(.{40})/, '$1!')}.`,
    ],
    ['a space inside the token', `Bearer ${token()} x`],
    [
      'a payload that is not UTF-8',
      `Bearer ${NONE_HEADER}.${Buffer.concat([Buffer.from('{"iss":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]).toString('base64url')}.`,
    ],
    ['an empty header part', `Bearer .${b64(exampleClaims({ aud: ENDPOINT, iatSeconds: NOW_S }))}.`],
  ],
  JWT_ALG_NOT_NONE: [
    ['alg HS256', `Bearer ${b64({ alg: 'HS256', typ: 'JWT' })}.${token().split('.')[1]}.`],
    ['no alg', `Bearer ${b64({ typ: 'JWT' })}.${token().split('.')[1]}.`],
    ['alg "None"', `Bearer ${b64({ alg: 'None' })}.${token().split('.')[1]}.`],
  ],
  JWT_SIGNATURE_NOT_EMPTY: [['a signature', `${bearer()}c2lnbmF0dXJl`]],
  JWT_ISS_MISSING: [
    ['no iss', bearer({ iss: undefined })],
    ['an empty iss', bearer({ iss: '' })],
    ['a number for iss', bearer({ iss: 42 })],
  ],
  JWT_SUB_MISMATCH: [
    ['sub not the practitioner id', bearer({ sub: '99999' })],
    ['no sub', bearer({ sub: undefined })],
    ['a number for sub', bearer({ sub: 10019 })],
  ],
  JWT_AUD_MISSING: [
    ['no aud', bearer({ aud: undefined })],
    ['an empty aud', bearer({ aud: '' })],
    ['an array for aud (RFC 7519 allows it; GP Connect names one service root)', bearer({ aud: [ENDPOINT] })],
  ],
  JWT_AUD_NOT_ENDPOINT: [
    ['another endpoint', bearer({ aud: 'https://provider.example.nhs.uk/B1234/STU3/1/gpconnect/fhir' })],
    ['the endpoint with a query', bearer({ aud: `${ENDPOINT}?x=1` })],
    ['a path below the endpoint', bearer({ aud: `${ENDPOINT}/Patient` })],
    ['http for https', bearer({ aud: ENDPOINT.replace('https:', 'http:') })],
  ],
  JWT_IAT_INVALID: [
    ['iat 201 s ahead', bearer({}, NOW_S + 201)],
    ['iat a string', bearer({ iat: String(NOW_S) })],
    ['iat missing', bearer({ iat: undefined })],
  ],
  JWT_EXP_NOT_IAT_PLUS_300: [
    ['exp = iat + 299', bearer({ exp: NOW_S + 299 })],
    ['exp = iat + 3600', bearer({ exp: NOW_S + 3600 })],
    ['exp missing', bearer({ exp: undefined })],
    ['exp fractional', bearer({ exp: NOW_S + 300.5 })],
  ],
  JWT_EXPIRED: [
    ['exp now (a token is good until, not at, exp)', bearer({}, NOW_S - 300)],
    ['exp an hour ago', bearer({}, NOW_S - 3900)],
  ],
  JWT_REASON_INVALID: [
    ['another reason', bearer({ reason_for_request: 'secondarycare' })],
    ['other case', bearer({ reason_for_request: 'DirectCare' })],
    ['no reason', bearer({ reason_for_request: undefined })],
  ],
  JWT_SCOPE_INVALID: [
    ['patient/*.*', bearer({ requested_scope: 'patient/*.*' })],
    ['two resource scopes', bearer({ requested_scope: 'patient/*.read organization/*.read' })],
    ['two spaces', bearer({ requested_scope: 'patient/*.read  conf/N' })],
    ['conf/N alone', bearer({ requested_scope: 'conf/N' })],
    ['an unknown confidentiality', bearer({ requested_scope: 'patient/*.read conf/X' })],
    ['no scope', bearer({ requested_scope: undefined })],
    ['an array', bearer({ requested_scope: ['patient/*.read'] })],
  ],
  JWT_SCOPE_NOT_FOR_INTERACTION: [
    ['write for a read interaction (write does not include read)', bearer({ requested_scope: 'patient/*.write' })],
    ['organization for a patient interaction', bearer({ requested_scope: 'organization/*.read' })],
  ],
  JWT_DEVICE_INVALID: [
    ['no device', bearer({ requesting_device: undefined })],
    [
      'another resource type',
      bearer({ requesting_device: { ...(exampleClaims({ aud: ENDPOINT }).requesting_device as object), resourceType: 'Organization' } }),
    ],
    ['no model', bearer({ requesting_device: { resourceType: 'Device', identifier: [{ system: 's', value: 'v' }], version: '1' } })],
    ['an identifier without a system', bearer({ requesting_device: { resourceType: 'Device', identifier: [{ value: 'v' }], model: 'm', version: '1' } })],
    [
      'identifier an object, not a list',
      bearer({ requesting_device: { resourceType: 'Device', identifier: { system: 's', value: 'v' }, model: 'm', version: '1' } }),
    ],
    ['a string', bearer({ requesting_device: 'Device' })],
  ],
  JWT_ORGANIZATION_INVALID: [
    [
      'the DSTU2 ODS system',
      bearer({
        requesting_organization: {
          resourceType: 'Organization',
          identifier: [{ system: 'http://fhir.nhs.net/Id/ods-organization-code', value: 'A1001' }],
          name: 'n',
        },
      }),
    ],
    [
      'no name',
      bearer({
        requesting_organization: { resourceType: 'Organization', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'A1001' }] },
      }),
    ],
    [
      'an empty ODS code',
      bearer({
        requesting_organization: {
          resourceType: 'Organization',
          identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: '' }],
          name: 'n',
        },
      }),
    ],
    ['an array', bearer({ requesting_organization: [] })],
  ],
  JWT_PRACTITIONER_INVALID: [
    ['no role profile identifier', withPractitioner({ identifier: [SDS_USER] })],
    ['no SDS user identifier', withPractitioner({ identifier: [SDS_ROLE] })],
    ['name an object (STU3: a list of HumanName)', withPractitioner({ name: { family: 'Jones' } })],
    ['no name', withPractitioner({ name: undefined })],
    ['a Patient', withPractitioner({ resourceType: 'Patient' })],
    ['no id (sub then has nothing to differ from)', withPractitioner({ id: undefined })],
  ],
};

describe('JWT check: one rule broken, exactly its code', () => {
  test('the spec-shaped example token breaks no rule, routed or not', () => {
    const inspection = inspectJwt(bearer(), NOW);
    expect(inspection.findings).toEqual([]);
    expect(routedJwtFindings(inspection, ENDPOINT, READ)).toBe(inspection.findings);
    expect(routedJwtFindings(inspection, ENDPOINT, 'patient/*.read')).toEqual([]);
    expect(routedJwtFindings(inspection, ENDPOINT, null)).toEqual([]);
  });

  test('every rule code has tokens that break only it', () => {
    expect(Object.keys(BREAKS_ONLY).sort()).toEqual([...JWT_RULE_CODES].sort());
  });

  for (const code of JWT_RULE_CODES) {
    for (const [what, authorization] of BREAKS_ONLY[code]) {
      test(`${code}: ${what}`, () => {
        expect(findingsOf(authorization)).toEqual([code]);
      });
    }
  }

  test('findings are listed in JWT_RULES order, routed ones in their place', () => {
    const auth = bearer({ aud: 'https://elsewhere.example/fhir', requested_scope: 'organization/*.write', iss: undefined, requesting_device: undefined });
    expect(findingsOf(auth)).toEqual(['JWT_ISS_MISSING', 'JWT_AUD_NOT_ENDPOINT', 'JWT_SCOPE_NOT_FOR_INTERACTION', 'JWT_DEVICE_INVALID']);
    expect(Object.keys(JWT_RULES)).toEqual(JWT_RULE_CODES);
  });
});

describe('JWT check: what passes', () => {
  test.each([
    ['lower-case scheme (RFC 9110 11.1)', `bearer ${token()}`],
    ['several spaces after Bearer', `Bearer   ${token()}`],
    ['header keys in the other order', `Bearer ${b64({ typ: 'JWT', alg: 'none' })}.${token().split('.')[1]}.`],
    ['a header with extra keys', `Bearer ${b64({ alg: 'none', typ: 'JWT', kid: 'x' })}.${token().split('.')[1]}.`],
    ['iat exactly 200 s ahead (the tolerance)', bearer({}, NOW_S + 200)],
    ['iat 299 s ago (exp 1 s ahead)', bearer({}, NOW_S - 299)],
    ['reason migration', bearer({ reason_for_request: 'migration' })],
    ['scope with conf/R', bearer({ requested_scope: 'patient/*.read conf/R' })],
    ['scope with conf/N first', bearer({ requested_scope: 'conf/N patient/*.read' })],
    ['role profile UNK (no smartcard)', withPractitioner({ identifier: [SDS_USER, { ...SDS_ROLE, value: 'UNK' }] })],
    ['aud with a trailing /', bearer({ aud: `${ENDPOINT}/` })],
    ['aud with the host in capitals and the default port', bearer({ aud: ENDPOINT.replace('provider.example.nhs.uk', 'PROVIDER.example.nhs.uk:443') })],
    ['unknown extra claims', bearer({ jti: 'x', requested_record: { resourceType: 'Patient' } })],
  ])('%s', (_what, authorization) => {
    expect(findingsOf(authorization)).toEqual([]);
  });

  test('the interaction scope: the leading scope of INTERACTIONS_FILE requestedScope, conf/* aside; none required, none judged', () => {
    const write = inspectJwt(bearer({ requested_scope: 'patient/*.write' }), NOW);
    expect(routedJwtFindings(write, ENDPOINT, 'patient/*.write')).toEqual([]);
    expect(routedJwtFindings(write, ENDPOINT, null)).toEqual([]);
    expect(routedJwtFindings(write, ENDPOINT, 'patient/*.read')).toEqual(['JWT_SCOPE_NOT_FOR_INTERACTION']);
    const org = inspectJwt(bearer({ requested_scope: 'organization/*.read' }), NOW);
    expect(routedJwtFindings(org, ENDPOINT, 'organization/*.read (not listed in the scope table; inferred)')).toEqual([]);
    expect(routedJwtFindings(org, ENDPOINT, 'organization/*.readx')).toEqual(['JWT_SCOPE_NOT_FOR_INTERACTION']);
    // An invalid scope is judged by its own rule only.
    expect(routedJwtFindings(inspectJwt(bearer({ requested_scope: 'x' }), NOW), ENDPOINT, READ)).toEqual(['JWT_SCOPE_INVALID']);
  });

  test('an endpoint registered with a trailing / in the directory is compared without it (the directory drops it)', () => {
    const inspection = inspectJwt(bearer({ aud: `${ENDPOINT}/` }), NOW);
    expect(routedJwtFindings(inspection, ENDPOINT, READ)).toEqual([]);
    expect(routedJwtFindings(inspection, `${ENDPOINT}/Patient`, READ)).toEqual(['JWT_AUD_NOT_ENDPOINT']);
  });
});

describe('JWT check: the audit claims come from the same decode', () => {
  test('the example: the claims decodeJwtClaims has always given', () => {
    expect(inspectJwt(bearer(), NOW).claims).toEqual({
      requestingOrganization: 'A1001',
      practitionerId: '111222333444',
      practitionerRole: '444555666777',
      device: 'Consumer product name 5.3.0',
      reasonForRequest: 'directcare',
      requestedScope: 'patient/*.read',
    });
    expect(decodeJwtClaims(bearer())).toEqual(inspectJwt(bearer(), NOW).claims);
  });

  test('a broken claim is still recorded when it is short printable text; a header that is not JSON keeps the claims', () => {
    expect(inspectJwt(bearer({ reason_for_request: 'secondarycare' }), NOW).claims.reasonForRequest).toBe('secondarycare');
    const badHeader = inspectJwt(`Bearer ${b64('nope')}.${token().split('.')[1]}.`, NOW);
    expect(badHeader.findings).toEqual(['JWT_MALFORMED']);
    expect(badHeader.claims.requestingOrganization).toBe('A1001');
  });

  test('the inspection never shows aud (JSON, util.inspect, spread): only claims and findings', () => {
    const inspection = inspectJwt(bearer({ aud: 'https://secret-aud.example/x' }), NOW);
    for (const shown of [JSON.stringify(inspection), inspect(inspection, { depth: 5, showHidden: true }), JSON.stringify({ ...inspection })]) {
      expect(shown).not.toContain('secret-aud');
    }
  });
});

describe('JWT check: hostile tokens', () => {
  const cpuMs = (fn: () => void) => {
    const t0 = process.cpuUsage();
    fn();
    const t = process.cpuUsage(t0);
    return (t.user + t.system) / 1000;
  };

  test('a huge value is refused by size before any decoding', () => {
    const huge = `Bearer ${'A'.repeat(10_000_000)}.${'B'.repeat(10)}.`;
    let result: readonly string[] = [];
    expect(cpuMs(() => (result = inspectJwt(huge, NOW).findings))).toBeLessThan(50);
    expect(result).toEqual(['JWT_TOO_LARGE']);
  });

  test('deeply nested JSON within the bound neither crashes nor takes long', () => {
    for (const nested of ['['.repeat(2900) + ']'.repeat(2900), '{"a":'.repeat(950) + '1' + '}'.repeat(950)]) {
      for (const text of [nested, `{"iss":${nested}}`]) {
        const auth = rawPayload(text);
        expect(auth.length).toBeLessThanOrEqual(8192);
        let findings: readonly string[] = [];
        expect(cpuMs(() => (findings = inspectJwt(auth, NOW).findings))).toBeLessThan(100);
        expect(findings.length).toBeGreaterThan(0);
      }
    }
  });

  test('__proto__, constructor and prototype keys are inert: no pollution, no claim read through them', () => {
    const text =
      '{"__proto__":{"iss":"x","polluted":1},"constructor":{"prototype":{"polluted":1}},' +
      '"requesting_practitioner":{"__proto__":{"resourceType":"Practitioner","id":"1"}},"requesting_organization":{"__proto__":[1]}}';
    const inspection = inspectJwt(rawPayload(text), NOW);
    expect(inspection.findings).toEqual(expect.arrayContaining(['JWT_ISS_MISSING', 'JWT_PRACTITIONER_INVALID', 'JWT_ORGANIZATION_INVALID']));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'iss')).toBe(false);
    expect(inspection.claims.practitionerId).toBe('');
  });

  test('non-string types in every claim: findings, never a throw', () => {
    const claims = Object.keys(exampleClaims({ aud: ENDPOINT }));
    for (const value of [null, 0, -1, 1e308, true, [], {}, [[]], { length: 1 }]) {
      for (const claim of claims) expect(findingsOf(bearer({ [claim]: value })).length).toBeGreaterThan(0);
    }
    expect(findingsOf(rawPayload('{}'))).toEqual([
      'JWT_ISS_MISSING',
      'JWT_SUB_MISMATCH',
      'JWT_AUD_MISSING',
      'JWT_IAT_INVALID',
      'JWT_EXP_NOT_IAT_PLUS_300',
      'JWT_REASON_INVALID',
      'JWT_SCOPE_INVALID',
      'JWT_DEVICE_INVALID',
      'JWT_ORGANIZATION_INVALID',
      'JWT_PRACTITIONER_INVALID',
    ]);
  });

  test('lone surrogates (JSON escapes) and control characters: judged, never recorded', () => {
    const text = JSON.stringify(exampleClaims({ aud: ENDPOINT, iatSeconds: NOW_S }))
      .replace('"directcare"', '"\\ud800"')
      .replace('"A1001"', '"A1\\udc00"')
      .replace('"patient/*.read"', '"patient/*.read\\u0000"');
    const inspection = inspectJwt(rawPayload(text), NOW);
    expect(inspection.findings).toEqual(['JWT_REASON_INVALID', 'JWT_SCOPE_INVALID']);
    expect(inspection.claims.reasonForRequest).toBe('');
    expect(inspection.claims.requestingOrganization).toBe('');
    expect(inspection.claims.requestedScope).toBe('');
  });

  test('2,000 random mutations of a good token: never a throw, always codes of JWT_RULES', () => {
    const good = bearer();
    const alphabet = 'Aa0_-.=+/ \t!\u00ff{}"';
    let seed = 12345;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    for (let i = 0; i < 2000; i++) {
      const chars = [...good];
      for (let k = 0, edits = 1 + rnd(4); k < edits; k++) chars[rnd(chars.length)] = alphabet[rnd(alphabet.length)];
      const findings = routedJwtFindings(inspectJwt(chars.join(''), NOW), ENDPOINT, READ);
      for (const f of findings) expect(JWT_RULE_CODES).toContain(f);
    }
  });
});

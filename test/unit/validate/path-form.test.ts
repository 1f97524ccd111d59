import { PATH_FORMS, pathFormProblem, targetSyntaxProblem } from '../../../src/validate';
import { posix } from 'node:path';

const ROOT = 'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir';

describe('pathFormProblem', () => {
  test.each([
    `${ROOT}/metadata`,
    `${ROOT}/Patient/9000000009`,
    `${ROOT}/Patient/$gpc.getstructuredrecord`,
    `${ROOT}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009`,
    `${ROOT}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9000000009`,
    `${ROOT}/Slot?start=ge2026-11-21&end=le2026-11-28&status=free&_include=Slot:schedule`,
    `${ROOT}/Appointment/148`,
    `${ROOT}/Patient/2/DocumentReference?_include=DocumentReference:subject:Patient`,
    `${ROOT}/Binary/07a6483f-732b-461e-86b6-edb665c45510`,
    `${ROOT}/Patient/a-b.c..d`,
    `${ROOT}/a/...b/.c/d../%2e%2ex/x%2e/a+b/+/%20`,
    `${ROOT}/%41%42`, // encoded unreserved letters: the same path on every server
    `${ROOT}?x=..;/%2e%2e%2f%c0%ae`, // the query is not a path
    'https://gp.example.nhs.uk',
    'https://gp.example.nhs.uk?x=1',
  ])('accepts %s', (target) => {
    expect(targetSyntaxProblem(target)).toBeNull();
    expect(pathFormProblem(target)).toBeNull();
  });

  test.each([
    ['/..;/structured', PATH_FORMS.dotSegment],
    ['/..;x=y/structured', PATH_FORMS.dotSegment],
    ['/.;/x', PATH_FORMS.dotSegment],
    ['/%2e%2e;/x', PATH_FORMS.dotSegment],
    ['/%2E%2e/x', PATH_FORMS.dotSegment],
    ['/../x', PATH_FORMS.dotSegment],
    ['/.', PATH_FORMS.dotSegment],
    ['/x/..', PATH_FORMS.dotSegment],
    ['/..%20/x', PATH_FORMS.dotSegment],
    ['/.../x', PATH_FORMS.dotSegment],
    ['/..+/x', PATH_FORMS.dotSegment], // a form-decoder's space
    ['/+../x', PATH_FORMS.dotSegment],
    ['/%20../x', PATH_FORMS.dotSegment],
    ['/..%ef%bc%9b/x', PATH_FORMS.dotSegment], // ..; with a fullwidth semicolon
    ['/a%ef%bc%85b', PATH_FORMS.compatibility], // fullwidth %
    ['/..%c0%bb/x', PATH_FORMS.badUtf8], // overlong ;
    ['/%ef%bc%8e%ef%bc%8e/x', PATH_FORMS.dotSegment],
    ['/%EF%BC%8E%EF%BC%8E%EF%BC%9B/x', PATH_FORMS.dotSegment], // fullwidth ..;
    ['/%ef%b9%92/x', PATH_FORMS.dotSegment], // small full stop
    ['/..%c2%a0/x', PATH_FORMS.dotSegment], // no-break space is a space after NFKC
    ['/%c0%ae%c0%ae/x', PATH_FORMS.badUtf8],
    ['/%e0%80%ae/x', PATH_FORMS.badUtf8],
    ['/%f0%80%80%ae/x', PATH_FORMS.badUtf8],
    ['/%c0%af', PATH_FORMS.badUtf8],
    ['/%ed%a0%80', PATH_FORMS.badUtf8],
    ['/%f4%90%80%80', PATH_FORMS.badUtf8], // beyond U+10FFFF
    ['/..%3b/x', PATH_FORMS.encodedSeparator],
    ['/a%2Fb', PATH_FORMS.encodedSeparator],
    ['/a%5cb', PATH_FORMS.encodedSeparator],
    ['/a%ef%bc%8fb', PATH_FORMS.compatibility],
    ['/a%ef%bc%bcb', PATH_FORMS.compatibility],
    ['/a%ef%bc%9fb', PATH_FORMS.compatibility], // fullwidth ?
    ['/a\\b', PATH_FORMS.backslash],
    ['/a;b', PATH_FORMS.parameters],
    ['/%252e%252e', PATH_FORMS.doubleEncoded],
    ['/..%09', PATH_FORMS.control],
    ['/a%00', PATH_FORMS.control],
    ['/a%7F', PATH_FORMS.control],
    ['/a\tb', PATH_FORMS.control],
    ['/a%', PATH_FORMS.badEscape],
    ['/a%4', PATH_FORMS.badEscape],
    ['/a%4g', PATH_FORMS.badEscape],
    ['/%u002e', PATH_FORMS.badEscape],
  ])('refuses %s', (below, form) => {
    expect(targetSyntaxProblem(`${ROOT}${below}`)).toBeNull(); // target syntax leaves these to path form
    expect(pathFormProblem(`${ROOT}${below}`)).toBe(form);
    expect(pathFormProblem(`${ROOT}${below}?q=1`)).toBe(form);
  });

  test('a form never names the path it was found in', () => {
    for (const form of Object.values(PATH_FORMS)) expect(form).not.toMatch(/gpconnect|Patient/);
  });
});

describe('pathFormProblem, second pass (variants that passed the first version)', () => {
  test.each([
    ['/caf%C3%A9', PATH_FORMS.nonAscii], // accepted by the first version: no GP Connect path is non-ASCII
    ['/..%e2%88%95..%e2%88%95x', PATH_FORMS.nonAscii], // U+2215: best-fit "/"
    ['/..%e2%81%84x', PATH_FORMS.nonAscii], // U+2044: best-fit "/"
    ['/..%e2%88%96x', PATH_FORMS.nonAscii], // U+2216: best-fit "\"
    ['/..%c2%a5x', PATH_FORMS.nonAscii], // yen: "\" in cp932
    ['/..%e2%82%a9x', PATH_FORMS.nonAscii], // won: "\" in cp949
    ['/%e3%80%82%e3%80%82', PATH_FORMS.nonAscii], // ideographic full stop
    ['/..%e2%80%8b', PATH_FORMS.nonAscii], // zero-width space
    ['/..%c2%85', PATH_FORMS.nonAscii], // NEL: trimmed by .NET
    ['/..%c2%80', PATH_FORMS.nonAscii], // a C1 control
    ['/..%ef%bf%bd', PATH_FORMS.nonAscii], // U+FFFD
    ['/.%20./x', PATH_FORMS.dotSegment],
    ['/..%20./x', PATH_FORMS.dotSegment],
    ['/.+./x', PATH_FORMS.dotSegment],
    ['/%20%20.%20%20/x', PATH_FORMS.dotSegment],
    ['/..%3f/x', PATH_FORMS.encodedSeparator], // first: dotSegment; since: an encoded ? or # is refused anywhere
    ['/..%3Fq=1/x', PATH_FORMS.encodedSeparator],
    ['/.%23/x', PATH_FORMS.encodedSeparator],
    ['/a%3fb', PATH_FORMS.encodedSeparator],
    ['/a%23b', PATH_FORMS.encodedSeparator],
    ['/..:x/y', PATH_FORMS.dotSegment],
    ['/..%3a%3a$INDEX_ALLOCATION/y', PATH_FORMS.dotSegment],
    ['/.;/x', PATH_FORMS.dotSegment],
    ['/%e2%80%a5', PATH_FORMS.dotSegment], // two-dot leader: ".." after NFKC
    ['/..%e3%80%80', PATH_FORMS.dotSegment], // ideographic space: " " after NFKC
    ['/%25252e', PATH_FORMS.doubleEncoded],
    ['/%%32%65', PATH_FORMS.badEscape],
    ['/%U002E', PATH_FORMS.badEscape],
    ['/%f8%80%80%80%ae', PATH_FORMS.badUtf8],
  ])('refuses %s', (below, form) => {
    expect(targetSyntaxProblem(`${ROOT}${below}`)).toBeNull();
    expect(pathFormProblem(`${ROOT}${below}`)).toBe(form);
  });

  test.each([
    `${ROOT}/Patient/a..b`, // dots inside a name are not a dot-segment
    `${ROOT}/Patient/.a`,
    `${ROOT}/Patient/a:b`, // a colon in an ordinary name
    `${ROOT}/+`,
    `${ROOT}/%20`,
    `${ROOT}/Patient/${'9'.repeat(64)}`,
  ])('still accepts %s', (target) => {
    expect(targetSyntaxProblem(target)).toBeNull();
    expect(pathFormProblem(target)).toBeNull();
  });

  test('linear time: a 1 MiB path of each costly shape is checked in well under a second', () => {
    const shapes = [
      `/${'a'.repeat(1 << 20)}`, // one long segment
      '/a'.repeat(1 << 19), // many short segments
      `/${'%41'.repeat(349_525)}`, // escapes everywhere
      `/${'.'.repeat(1 << 20)}x`, // dots, then not a dot name
      `/${'+'.repeat(1 << 20)}.x`,
      `/x${'%c3%a9'.repeat(174_762)}`, // non-ASCII: decoded and normalised once
      `/${'%e2%80%a5'.repeat(116_508)}`, // NFKC expands each to two dots
    ];
    for (const path of shapes) {
      const t0 = process.hrtime.bigint();
      pathFormProblem(`${ROOT}${path}`);
      targetSyntaxProblem(`${ROOT}${path}`);
      expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeLessThan(1000);
    }
  });
});

describe('targetSyntaxProblem, second pass: the authority', () => {
  test.each([
    'https://gp.example.nhs.uk\u3002evil/x', // ideographic full stop in the host
    'https://gp.example.nhs.uk\uff0fevil/x', // fullwidth solidus in the host
    'https://gp%2eexample.nhs.uk/x',
    'https://u@gp.example.nhs.uk/x',
    'https://gp.example.nhs.uk%40evil/x',
    'https://gp.example.nhs.uk\\@evil/x',
    'https://gp.example.nhs.uk#@evil/x',
    'https://gp.example.nhs.uk;x/x',
    'https://gp.example.nhs.uk x/x',
    'https:///x',
    'https:/gp.example.nhs.uk/x',
    'https:\\\\gp.example.nhs.uk/x',
    'HTTPS://gp.example.nhs.uk/x',
    ' https://gp.example.nhs.uk/x',
  ])('refuses %j', (target) => {
    expect(targetSyntaxProblem(target)).not.toBeNull();
  });
});

describe('pathFormProblem, second pass: _method in the query', () => {
  test.each([
    '_method=DELETE',
    'a=1&_method=PUT',
    '_METHOD=x',
    '%5Fmethod=x',
    '.method=x',
    '[method=x',
    '_method[]=x',
    '+_method=x',
    '_%6Dethod=x',
    '_method',
    'a;_method=x',
  ])('refuses ?%s', (query) => {
    expect(pathFormProblem(`${ROOT}/metadata?${query}`)).toBe(PATH_FORMS.methodParameter);
  });
  test.each(['method=x', '_methods=x', 'x_method=x', 'a=_method', '_format=json&_count=1', '%zz=1', '+method=x', '_count=1'])('accepts ?%s', (query) => {
    expect(pathFormProblem(`${ROOT}/metadata?${query}`)).toBeNull();
  });
  test('linear: a 1 MiB query of encoded names is checked in well under a second', () => {
    const query = '%41%42%43%44method=1&'.repeat(50_000);
    const t0 = process.hrtime.bigint();
    expect(pathFormProblem(`${ROOT}/metadata?${query}`)).toBeNull();
    expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeLessThan(1000);
  });
});

test('pathFormProblem, second pass: a 1 MiB query of many plain names stays linear', () => {
  for (const query of ['aaaaaaa=1&'.repeat(100_000), '+++++++&'.repeat(130_000), '_methox=1&'.repeat(100_000)]) {
    const t0 = process.hrtime.bigint();
    expect(pathFormProblem(`${ROOT}/metadata?${query}`)).toBeNull();
    expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeLessThan(1000);
  }
});

/**
 * Second pass, differential: seeded random paths below the endpoint, built from the tokens
 * of every attack above, and read by simplified models of how servers resolve a path
 * (Tomcat/Spring: ;parameters stripped per segment then decoded; decode first; IIS:
 * decoded, \ as /, trailing dots and spaces trimmed; nginx; Node's path.normalize; a
 * double decoder; an NFKC stack; a form decoder that trims; a proxy that cuts at a decoded
 * ? or #; Windows best-fit). On the first version of the check it finds escapes. Every path the gateway accepts must resolve, in every model, to the endpoint or
 * below it.
 */
test('pathFormProblem, second pass: no accepted path escapes the endpoint in any server model (30,000 seeded paths)', () => {
  const EP = '/A20047/STU3/1/gpconnect/fhir';
  const tokens = [
    '.',
    '..',
    '%2e',
    '%2E',
    ';',
    '%3b',
    '/',
    '%2f',
    '\\',
    '%5c',
    '+',
    '%20',
    '%09',
    '%00',
    'a',
    '%25',
    '%c0%ae',
    '%ef%bc%8e',
    '%e2%88%95',
    '%c2%a5',
    ':',
    '%3a',
    '?',
    '%3f',
    '#',
    '%23',
    '~',
    '%7e',
    '$',
    '=',
    '@',
    '&',
    '!',
    "'",
    '(',
    ')',
    ',',
    '%u002e',
    '%2',
    'x.',
    '.x',
    '%252e',
    '%0a',
    '%c2%a0',
    '%e3%80%82',
  ];
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    }
  };
  const dots = (segments: string[]) => {
    const out: string[] = [];
    for (const s of segments)
      if (s === '..') out.pop();
      else if (s !== '.' && s !== '') out.push(s);
    return `/${out.join('/')}`;
  };
  const models: Record<string, (p: string) => string> = {
    tomcat: (p) => dots(p.split('/').map((s) => decode(s.split(';')[0]))),
    decodeFirst: (p) =>
      dots(
        decode(p)
          .split('/')
          .map((s) => s.split(';')[0]),
      ),
    iis: (p) =>
      dots(
        decode(p)
          .replace(/\\/g, '/')
          .split('/')
          .map((s) => (/^[. ]+$/.test(s) && s.includes('..') ? '..' : s.replace(/[. ]+$/, '') || s)),
      ),
    nginx: (p) => dots(decode(p).split('/')),
    node: (p) => posix.normalize(decode(p).replace(/\\/g, '/')),
    doubleDecode: (p) =>
      dots(
        decode(decode(p))
          .replace(/\\/g, '/')
          .split('/')
          .map((s) => s.split(';')[0]),
      ),
    nfkc: (p) =>
      dots(
        decode(p)
          .normalize('NFKC')
          .replace(/\\/g, '/')
          .split('/')
          .map((s) => s.split(';')[0]),
      ),
    formTrim: (p) =>
      dots(
        decode(p.replace(/\+/g, ' '))
          .split('/')
          .map((s) => s.trim()),
      ),
    cutAtQuery: (p) => dots(decode(p).split(/[?#]/)[0].split('/')),
    windowsBestFit: (p) =>
      dots(
        decode(p)
          .replace(/[\u2215\u2044\uff0f]/g, '/')
          .replace(/[\u2216\uff3c\u00a5\u20a9\\]/g, '/')
          .split('/'),
      ),
  };
  let accepted = 0;
  const escapes: string[] = [];
  for (let n = 0; n < 30_000; n++) {
    let below = '/';
    for (let i = 1 + rnd(6); i > 0; i--) below += tokens[rnd(tokens.length)];
    const target = `https://gp.example.nhs.uk${EP}${below}`;
    if (targetSyntaxProblem(target) !== null || pathFormProblem(target) !== null) continue;
    accepted++;
    const path = EP + below.split('?')[0];
    for (const [name, read] of Object.entries(models)) {
      const resolved = read(path);
      if (resolved !== EP && !resolved.startsWith(`${EP}/`)) escapes.push(`${name}: ${below} -> ${resolved}`);
    }
  }
  expect(accepted).toBeGreaterThan(5000); // the generator also makes legitimate paths
  expect(escapes).toEqual([]);
});

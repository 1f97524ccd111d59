import { targetSyntaxProblem } from '../../../src/validate';

describe('targetSyntaxProblem', () => {
  test.each([
    'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir/metadata',
    'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/structured/fhir/Patient/$gpc.getstructuredrecord',
    'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009',
    'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir/Slot?start=ge2026-11-21&status=free&_include=Slot:schedule',
    'http://127.0.0.1:8081/a/b%24c/',
    'https://[::1]:8443/x',
    'https://gp.example.nhs.uk',
    'https://gp.example.nhs.uk?x=1',
    'https://gp.example.nhs.uk/a/...b/.c/d..',
  ])('accepts %s', (target) => {
    expect(targetSyntaxProblem(target)).toBeNull();
  });

  test.each([
    ['ftp://gp.example/x', /absolute URL starting http/],
    ['//gp.example/x', /absolute URL starting http/],
    ['https:///x', /no host/],
    ['https://gp.example/a//b', /empty segment/],
    ['https://gp.example/a/é', /percent-encoded/],
    ['https://gp.example/a b', /percent-encoded/],
    ['https://gp.example/a?b=c d', /percent-encoded/],
    ['https://gp.example/a?b=c#d', /fragment/],
    ['https://gp.example/a?b=%0d%0a', /control character/],
    ['https://gp.example/a?b=%7F', /control character/],
    ['https://a@gp.example/', /userinfo/],
  ])('refuses %s', (target, why) => {
    expect(targetSyntaxProblem(target)).toMatch(why);
  });
});

/**
 * A realistic GP Connect 1.x token (ssp-reference.md section 8), built like the spec's
 * example (fixtures/gpconnect/jwt): unsigned, `exp` = `iat` + 300, the three minimal
 * resources with their identifier systems. For the demo, the README's quick start and
 * tests; the values are the spec's synthetic ones (test ODS codes, no patient).
 */
export interface ExampleTokenOptions {
  /** The provider's service root: the endpoint the request goes to. */
  readonly aud: string;
  /** Default `patient/*.read`. */
  readonly scope?: string;
  /** Default now. */
  readonly iatSeconds?: number;
  /** The requesting organisation's ODS code. Default A1001 (the spec's example). */
  readonly ods?: string;
  /** The practitioner's local id (also `sub`). Default 10019. */
  readonly practitionerId?: string;
  /** Claims to set (or, with undefined, to drop) after the example is built: to break one rule in a test. */
  readonly override?: Readonly<Record<string, unknown>>;
}

/** The token's payload as an object (before any `override`). */
export function exampleClaims(options: ExampleTokenOptions): Record<string, unknown> {
  const iat = options.iatSeconds ?? Math.floor(Date.now() / 1000);
  const id = options.practitionerId ?? '10019';
  return {
    iss: 'https://consumersupplier.thirdparty.nhs.uk/',
    sub: id,
    aud: options.aud,
    exp: iat + 300,
    iat,
    reason_for_request: 'directcare',
    requested_scope: options.scope ?? 'patient/*.read',
    requesting_device: {
      resourceType: 'Device',
      identifier: [{ system: 'https://consumersupplier.com/Id/device-identifier', value: 'CONS-APP-4' }],
      model: 'Consumer product name',
      version: '5.3.0',
    },
    requesting_organization: {
      resourceType: 'Organization',
      identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: options.ods ?? 'A1001' }],
      name: 'Test Hospital',
    },
    requesting_practitioner: {
      resourceType: 'Practitioner',
      id,
      identifier: [
        { system: 'https://fhir.nhs.uk/Id/sds-user-id', value: '111222333444' },
        { system: 'https://fhir.nhs.uk/Id/sds-role-profile-id', value: '444555666777' },
        { system: 'https://consumersupplier.com/Id/user-guid', value: '98ed4f78-814d-4266-8d5b-cde742f3093c' },
      ],
      name: [{ family: 'Jones', given: ['Claire'], prefix: ['Dr'] }],
    },
  };
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The unsigned token (`<header>.<payload>.`): send it as `Authorization: Bearer <token>`. */
export function exampleToken(options: ExampleTokenOptions): string {
  const claims = exampleClaims(options);
  for (const [key, value] of Object.entries(options.override ?? {})) {
    if (value === undefined) delete claims[key];
    else claims[key] = value;
  }
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
}

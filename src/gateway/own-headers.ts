import helmet from 'helmet';

/**
 * helmet's headers for the gateway's own responses on the proxy port (refusals),
 * computed once at start-up by running helmet against a recorder: the proxy port has
 * no express, and a provider's response never gets these.
 */
export function ownResponseHeaders(tls: boolean): readonly string[] {
  const recorded: string[] = [];
  const recorder = {
    setHeader(name: string, value: string) {
      recorded.push(name, String(value));
    },
    removeHeader() {},
  };
  const middleware = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    hsts: tls ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  });
  middleware({ headers: {} } as never, recorder as never, () => {});
  recorded.push('Cache-Control', 'no-store');
  return Object.freeze(recorded);
}

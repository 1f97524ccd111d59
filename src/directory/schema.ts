import { z } from 'zod';
import { ASID_PATTERN, INTERACTION_PATTERN, ODS_PATTERN, pathFormProblem, targetSyntaxProblem } from '../validate';

const asid = z.string({ error: 'must be a quoted string of digits' }).regex(ASID_PATTERN, 'must be digits only');
const ods = z.string().regex(ODS_PATTERN, 'must be an ODS code (letters and digits)');
const interaction = z.string().regex(INTERACTION_PATTERN, 'must be an interaction URN (urn:nhs:names:services:...)');
const interactions = z.array(interaction).min(1, 'must list at least one interaction');
const odsList = z.union([z.literal('*'), z.array(ods).min(1)]);

/** Canonical absolute http(s) URL without userinfo, query or fragment (no alternative spellings). */
const endpointUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute URL' });
    return;
  }
  const fail = (message: string) => ctx.addIssue({ code: 'custom', message });
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('must be http or https');
  if (url.username || url.password) return fail('must not contain userinfo');
  if (url.search || url.hash || value.includes('?') || value.includes('#')) return fail('must not contain a query or fragment');
  const canonical = url.href.endsWith('/') ? url.href.slice(0, -1) : url.href;
  const given = value.endsWith('/') ? value.slice(0, -1) : value;
  if (canonical !== given) {
    return fail(`must be written canonically as ${canonical} (lower-case host, no default port, no dot-segments or escapes)`);
  }
  if (url.port === '0') return fail('must not name port 0');
  // A consumer's target must pass these checks before routing: an endpoint that cannot would load and never route.
  const unroutable = targetSyntaxProblem(given) ?? pathFormProblem(given);
  if (unroutable !== null) fail(`is not a URL a consumer's request could match (${unroutable}): register the path as consumers will send it`);
});

const rateLimit = z.object({ per_second: z.number().positive(), burst: z.number().int().positive() }).strict();

export const directorySchema = z
  .object({
    consumers: z.array(
      z
        .object({
          asid,
          ods,
          name: z.string().optional(),
          interactions,
          certificate_fqdns: z.array(z.string().min(1)).optional(),
          rate_limit: rateLimit.optional(),
          /** test traffic is kept apart (its own retention, diagnose, a metrics label); unset: the ENVIRONMENT setting. */
          environment: z.enum(['test', 'live']).optional(),
        })
        .strict(),
    ),
    providers: z.array(
      z
        .object({
          asid,
          ods,
          name: z.string().optional(),
          rate_limit: rateLimit.optional(),
          endpoints: z.array(z.object({ url: endpointUrl, interactions }).strict()).min(1),
        })
        .strict(),
    ),
    agreements: z.array(z.object({ id: z.string().min(1), consumers: odsList, providers: odsList }).strict()).optional(),
  })
  .strict();

export type DirectoryFile = z.output<typeof directorySchema>;

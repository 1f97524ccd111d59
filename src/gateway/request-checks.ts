import type { IncomingMessage } from 'node:http';
import { routedJwtFindings, type CheckMode, type InteractionCheck, type JwtInspection } from '../check';
import type { Consumer, DirectoryIndex, Endpoint, Provider } from '../directory';
import { refuse, type Refusal } from '../errors';
import type { RateLimiter } from '../limit';
import { upstreamPathFor, type Route } from '../route';
import { certificateSpeaksFor } from '../tls';
import { Transaction } from '../transaction';
import { forbiddenConnectionOption, overrideHeaderProblem, pathFormProblem, targetSyntaxProblem, type RequestHead } from '../validate';

/**
 * The checks a request passes before it is forwarded, by name, in the order the proxy runs
 * them (the SSP's order, then the gateway's own). The proxy stops at the first that
 * refuses; diagnose runs every one it can and shows each (README "Diagnose").
 */
export const CHECK_NAMES = [
  'framing',
  'method',
  'headers',
  'target',
  'path_form',
  'sender',
  'receiver',
  'endpoint',
  'agreement',
  'certificate',
  'interaction',
  'jwt',
  'body_size',
  'rate_limit',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/** What the checks need from settings, built once. */
export interface CheckSettings {
  readonly allowedMethods: readonly string[];
  readonly allowed: ReadonlySet<string>;
  /** MAX_HEADER_LINES: more field lines than this are refused with 431. */
  readonly maxHeaderLines: number;
  readonly maxBodyBytes: number;
  readonly limiter: RateLimiter;
  /** JWT_CHECK. */
  readonly jwtCheck: CheckMode;
  /** INTERACTION_CHECK, and the check compiled from INTERACTIONS_FILE. */
  readonly interactionCheck: { readonly mode: CheckMode; readonly check: InteractionCheck };
}

/**
 * One request under check: what it is, and what the checks have learnt about it so far
 * (the parties and the endpoint), which later checks use. One object per request.
 */
export class RequestChecks {
  /** The request-target without its leading "/": the provider URL. */
  readonly target: string;
  /** Ssp-From's directory entry, accredited or not (undefined: no such consumer). */
  consumer: Consumer | undefined = undefined;
  /** Ssp-To's directory entry (undefined: no such provider). */
  provider: Provider | undefined = undefined;
  /** The provider's endpoint for Ssp-InteractionID (undefined: none registered). */
  endpoint: Endpoint | undefined = undefined;
  /** Path and query to send below the endpoint's origin; null until the target is found under the endpoint. */
  upstreamPath: string | null = null;
  /** Where the request goes, once the target is found under the endpoint of two known parties (on the proxy's path: always, by then). */
  route: Route | null = null;

  constructor(
    /** Null only when routing without a request (routeThroughDirectory), which runs none of the checks that read it. */
    readonly req: IncomingMessage | null,
    readonly head: RequestHead | null,
    readonly tx: Transaction,
    /** The request-target as the proxy reads it: "/" then the provider URL (for diagnose, what follows "/_diagnose"). */
    readonly url: string,
    readonly index: DirectoryIndex,
    /** checkSspHeaders' answer, taken before the transaction was opened (it drops malformed values). */
    readonly headerProblem: Refusal | null,
    /** The token's one decode and its route-free findings; null when JWT_CHECK=off. */
    readonly jwt: JwtInspection | null,
  ) {
    this.target = url.slice(1);
  }
}

/**
 * Whether the connection may speak for Ssp-From's consumer: its client certificate is one
 * registered for it, or the directory binds none to it. False when Ssp-From is no consumer.
 * The certificate check, and what diagnose tells a connection, both rest on it.
 */
export function speaksForConsumer(s: RequestChecks): boolean {
  const fqdns = s.consumer?.certificateFqdns;
  return fqdns !== undefined && (fqdns === null || certificateSpeaksFor(s.tx.tls, fqdns));
}

/**
 * One named check: null when the request passes it, else the refusal the proxy gives.
 * `run` may assume that what the checks before it learnt is known (on the proxy's path
 * every one before it passed); diagnose asks first whether it is (diagnose.ts).
 */
export interface CheckStep {
  readonly name: CheckName;
  run(s: RequestChecks, c: CheckSettings): Refusal | null;
}

/**
 * Refusals about the connection's own framing, checked before anything else: a request
 * that is refused here is answered with `Connection: close`, since what follows it on the
 * connection may not be what the consumer meant as its next request.
 */
export function framingRefusal(req: IncomingMessage, head: RequestHead, maxHeaderLines: number): Refusal | null {
  // Node hands over at most maxHeadersCount lines (set one above the limit): more is too many.
  if (req.rawHeaders.length > maxHeaderLines * 2) return refuse.tooManyHeaders(maxHeaderLines);
  if (head.upgrade) return refuse.upgradeNotSupported();
  if (head.connection !== null) {
    const named = forbiddenConnectionOption(head.connection);
    if (named !== null) return refuse.connectionOption(named);
  }
  // HTTP/0.9 and "HTTP/2.0" request lines parse on this port but are not HTTP/1.x
  // messages: the consumer would be answered in a framing it did not ask for.
  if (req.httpVersionMajor !== 1) return refuse.malformedHttp();
  if (head.underscoreAlias !== null)
    return refuse.invalidHeader(head.underscoreAlias, 'spelt with "-" (a name with "_" for "-" is read as the same header by some provider stacks)');
  // RFC 9110 10.1.1: the only expectation is 100-continue; anything else would get Node's bare 417.
  if (head.unmetExpectation) return refuse.invalidHeader('Expect', '"100-continue", or no Expect header');
  if (req.httpVersionMinor === 1 ? head.hosts !== 1 : head.hosts > 1) return refuse.invalidHeader('Host', 'the host name the consumer connected to');
  // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  if (req.httpVersionMinor === 0 && head.hasTransferEncoding) return refuse.malformedHttp();
  // The same refusal Node's parser gives `chunked, identity`: only one `chunked` is relayed.
  if (head.otherTransferCoding) return refuse.malformedHttp();
  return null;
}

/** The first check: a refusal here closes the connection. */
export const FRAMING: CheckStep = { name: 'framing', run: (s, c) => framingRefusal(s.req!, s.head!, c.maxHeaderLines) };

/**
 * The one ordered list of checks, which the proxy (proxy-handler.ts) and diagnose
 * (diagnose.ts) both run. A check is added here, once, and both see it.
 */
export const REQUEST_CHECKS: readonly CheckStep[] = [
  FRAMING,
  { name: 'method', run: (s, c) => (c.allowed.has(s.tx.method) ? null : refuse.methodNotAllowed(c.allowedMethods)) },
  { name: 'headers', run: (s) => s.headerProblem },
  {
    name: 'target',
    run(s) {
      // Origin-form only: "/" then the provider URL. An absolute-form target (GET http://x/ HTTP/1.1) is refused.
      const problem = s.url.charCodeAt(0) === 0x2f ? targetSyntaxProblem(s.target) : 'the request-target must be "/" followed by the provider URL';
      return problem === null ? null : refuse.invalidTarget(problem);
    },
  },
  {
    name: 'path_form',
    run(s) {
      // A path a provider may resolve to another endpoint than the one checked here.
      const why = pathFormProblem(s.target) ?? overrideHeaderProblem(s.req!.rawHeaders);
      return why === null ? null : refuse.ambiguousPath(why);
    },
  },
  // Routing, in the SSP's order (ssp-reference.md section 3): sender accredited, receiver registered, target under the endpoint, agreement.
  {
    name: 'sender',
    run(s) {
      const consumer = (s.consumer = s.index.consumers.get(s.tx.consumerAsid));
      return consumer !== undefined && consumer.interactions.has(s.tx.interactionId) ? null : refuse.senderNotAuthorised(s.tx.consumerAsid);
    },
  },
  {
    name: 'receiver',
    run(s) {
      const provider = (s.provider = s.index.providers.get(s.tx.providerAsid));
      s.endpoint = provider?.endpointFor.get(s.tx.interactionId);
      return s.endpoint !== undefined ? null : refuse.receiverNotAuthorised(s.tx.providerAsid);
    },
  },
  {
    name: 'endpoint',
    run(s) {
      const endpoint = s.endpoint!;
      const upstreamPath = (s.upstreamPath = upstreamPathFor(s.target, endpoint));
      if (upstreamPath === null) return refuse.endpointVaries(endpoint.url, s.target, s.tx.providerAsid);
      // The request's one Route (diagnose may get here without a known sender: then none).
      const { consumer, provider } = s;
      if (consumer !== undefined && provider !== undefined) s.route = { consumer, provider, endpoint, upstreamPath };
      return null;
    },
  },
  {
    name: 'agreement',
    run(s) {
      const agreements = s.index.agreements;
      return agreements === null || agreements.covers(s.consumer!.ods, s.provider!.ods) ? null : refuse.noAgreement(s.tx.consumerAsid, s.tx.providerAsid);
    },
  },
  {
    // Spine's check 3: the certificate's host name must be one registered for the sender's ASID.
    name: 'certificate',
    run(s) {
      const consumer = s.consumer!;
      if (!speaksForConsumer(s)) {
        // The certificate is another system's: the claimed consumer's environment (a test one's short retention) is not its
        // to take. '' is "not known": the record and the metrics give it the ENVIRONMENT setting's value.
        s.tx.environment = '';
        return refuse.certificateNotForSender(s.tx.consumerAsid);
      }
      // Who is speaking, and where to, is now established: the record names them.
      const { tx, provider, endpoint } = s;
      tx.consumerOds = consumer.ods;
      if (provider !== undefined) tx.providerOds = provider.ods;
      if (endpoint !== undefined) {
        tx.endpoint = endpoint.url;
        tx.targetHost = endpoint.hostHeader;
      }
      return null;
    },
  },
  {
    // Beyond the SSP: what the request does must be what its interaction says (the audit records what happened).
    name: 'interaction',
    run(s, c) {
      const { mode, check } = c.interactionCheck;
      if (mode === 'off') return null;
      const tx = s.tx;
      // Diagnose may get here with no Route (a sender not in the directory): the endpoint and path are all the check needs.
      tx.interactionFindings = check.findings(tx.interactionId, tx.method, s.route ?? { endpoint: s.endpoint!, upstreamPath: s.upstreamPath! });
      const expected = mode === 'enforce' && tx.interactionFindings.length > 0 ? check.expected(tx.interactionId) : null;
      return expected === null ? null : refuse.interactionMismatch(tx.interactionId, expected.method, expected.path);
    },
  },
  {
    name: 'jwt',
    run(s, c) {
      const jwt = s.jwt;
      if (jwt === null) return null;
      const tx = s.tx;
      // aud and the scope are judged against the matched endpoint and interaction (on the proxy's path there always is one).
      tx.jwtFindings =
        s.endpoint === undefined ? jwt.findings : routedJwtFindings(jwt, s.endpoint.url, c.interactionCheck.check.requiredScope(tx.interactionId));
      return c.jwtCheck === 'enforce' && tx.jwtFindings.length > 0 ? refuse.jwtRejected(tx.jwtFindings) : null;
    },
  },
  { name: 'body_size', run: (s, c) => (s.head!.contentLength > c.maxBodyBytes ? refuse.bodyTooLarge(c.maxBodyBytes) : null) },
  {
    // After routing, so buckets exist only for ASIDs the directory knows; a token is taken only here.
    name: 'rate_limit',
    run(s, c) {
      const tx = s.tx;
      const over = c.limiter.admit(tx.consumerAsid, s.consumer!.rateLimit, tx.providerAsid, s.provider!.rateLimit);
      return over === null ? null : refuse.rateLimited(over.party, over.asid, over.limit.perSecond, over.limit.burst, over.retryAfterSeconds);
    },
  },
];

/** The routing checks of the list, in its order; they read no settings. */
const NO_SETTINGS = Object.freeze({}) as CheckSettings;

const ROUTING: readonly CheckStep[] = REQUEST_CHECKS.filter(
  (step) => step.name === 'sender' || step.name === 'receiver' || step.name === 'endpoint' || step.name === 'agreement',
);

/**
 * Routes without a request, for tools and tests (a directory import is checked with it):
 * the list's own routing checks (sender, receiver, endpoint, agreement), in its order.
 * Returns the Route, or the refusal of the first that fails.
 */
export function routeThroughDirectory(index: DirectoryIndex, from: string, to: string, interactionId: string, target: string): Route | Refusal {
  const tx = new Transaction('GET', '');
  tx.consumerAsid = from;
  tx.providerAsid = to;
  tx.interactionId = interactionId;
  const s = new RequestChecks(null, null, tx, `/${target}`, index, null, null);
  for (const step of ROUTING) {
    const refusal = step.run(s, NO_SETTINGS);
    if (refusal !== null) return refusal;
  }
  return s.route!;
}

export {
  CHECK_MODES,
  INTERACTION_FINDINGS,
  INTERACTION_FINDING_CODES,
  JWT_RULES,
  JWT_RULE_CODES,
  type CheckMode,
  type InteractionFinding,
  type JwtRule,
} from './finding-codes';
export { InteractionCheck, type RoutedTarget } from './interaction-check';
export { inspectJwt, routedJwtFindings, type JwtInspection } from './jwt-check';
export { exampleClaims, exampleToken, type ExampleTokenOptions } from './example-token';

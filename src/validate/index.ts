export { readRequestHead, checkSspHeaders, forbiddenConnectionOption, RequestHead } from './request-head';
export { targetSyntaxProblem } from './target-syntax';
export { ASID_PATTERN, INTERACTION_PATTERN, TRACE_ID_PATTERN, ODS_PATTERN } from './patterns';

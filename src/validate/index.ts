export { readRequestHead, checkSspHeaders, connectionOptions, forbiddenConnectionOption, RequestHead } from './request-head';
export { targetSyntaxProblem } from './target-syntax';
export { overrideHeaderProblem, pathFormProblem, PATH_FORMS } from './path-form';
export { ASID_PATTERN, INTERACTION_PATTERN, TRACE_ID_PATTERN, ODS_PATTERN } from './patterns';

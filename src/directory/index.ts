export { DirectoryStore, type DirectoryHooks } from './directory-store';
export { DirectoryIndex, type Endpoint, type Consumer, type Provider, type RateLimit } from './directory-index';
export { loadDirectory, loadInteractionCatalogue, DirectoryError, type LoadedDirectory } from './load-directory';
export { compileInteractionCatalogue, queryNamesOf, type CompiledInteraction, type InteractionCatalogue } from './interaction-catalogue';
export { checkDirectory, checkDirectoryText, type DirectoryCheck } from './load-directory';
export { importSds, type SdsImportInput, type SdsImportResult } from './sds-import';
export type { SdsSource } from './sds-records';

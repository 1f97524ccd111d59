export { loadSettings, ConfigError } from './load-settings';
export type { Settings } from './settings';

export { upstreamPathFor, type Route } from './resolve-route';

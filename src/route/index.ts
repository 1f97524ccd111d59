export { resolveRoute, type Route } from './resolve-route';

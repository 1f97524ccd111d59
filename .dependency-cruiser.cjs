/**
 * Import rules (npm run lint:deps). They keep the README's flow in the code:
 *
 *   consumer request → gateway (the handler) → validate → route → check → limit → audit begin
 *   (spool) → proxy → transaction end → audit record → spool → shipper → ClickHouse,
 *   with metrics and the admin API beside it.
 *
 * Each folder has a layer. A folder imports only folders in lower layers: the
 * vocabularies everything shares sit at the bottom (transaction, errors, config, log,
 * metrics), each stage knows only the stages it hands work to, and nothing reaches back up
 * the flow (the proxy never imports the handler, the spool never the proxy, ClickHouse
 * never the shipper, admin never the request path). The composition roots (src/*.ts,
 * src/cli and src/demo) wire everything and sit on top.
 */
const LAYERS = [
  ['transaction'],
  ['errors'],
  ['config', 'log', 'metrics', 'data-dir'],
  ['tls'],
  ['validate'],
  ['directory'],
  ['check'],
  ['route', 'limit', 'audit', 'seal'],
  ['proxy', 'spool', 'clickhouse'],
  ['gateway', 'shipper', 'admin', 'ipc'],
  // The gateway process's supervisor (never loads the store's code), then the store process's service.
  ['investigate', 'supervisor'],
  ['store'],
];

const layerOf = new Map(LAYERS.flatMap((folders, layer) => folders.map((f) => [f, layer])));
const upward = [...layerOf].map(([folder, layer]) => ({
  name: `layer-${folder}`,
  comment: `${folder} (layer ${layer}) imports only lower layers: ${LAYERS.slice(0, layer).flat().join(', ') || 'nothing in src'}`,
  severity: 'error',
  from: { path: `^src/${folder}/` },
  to: {
    path: `^src/(${[...layerOf]
      .filter(([f, l]) => l >= layer && f !== folder)
      .map(([f]) => f)
      .join('|')})/`,
  },
}));

/**
 * What the gateway process never loads (lean-gateway-process below): the audit store's
 * folders, the composition roots of other processes (the store's entry, the CLI, the demo)
 * and the ClickHouse clients.
 */
const OUTSIDE_GATEWAY = '^src/(clickhouse|store|investigate|shipper|cli|demo)/|^src/store-main\\.ts$|node_modules/(chdb|@clickhouse/client)/';
/** The modules that hold the in-process test seam of the store (lean-gateway-process-seam). */
const STORE_SEAM = '^src/(app|app-audit)\\.ts$';

const known = [...layerOf.keys(), 'cli', 'demo'].join('|');

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'every-folder-has-a-layer',
      comment: 'A new folder of src/ gets its place in LAYERS above, so the rules cover it.',
      severity: 'error',
      from: { path: `^src/(?!(${known})/)[^/]+/` },
      to: {},
    },
    {
      name: 'no-deep-imports',
      comment: "Another folder is imported through its index.ts only: a folder's files are its own business.",
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'roots-through-index',
      comment: 'The composition roots import folders through their index.ts too.',
      severity: 'error',
      from: { path: '^src/[^/]+\\.ts$' },
      to: { path: '^src/[^/]+/', pathNot: '^src/[^/]+/index\\.ts$' },
    },
    {
      name: 'express-in-admin-only',
      comment: "express is the admin port's and the investigations API's; the proxy port is plain node:http (measured faster).",
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(admin|investigate)/' },
      to: { path: 'node_modules/express/' },
    },
    {
      name: 'clickhouse-clients-in-clickhouse-only',
      comment: 'Only src/clickhouse talks to ClickHouse (server client and the embedded engine).',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/clickhouse/' },
      to: { path: 'node_modules/(@clickhouse/client|chdb)/' },
    },
    // The lean gateway process (issue 13; README "How the admin port reaches the audit store"):
    // no runtime import path from src/main.ts, app.ts, app-audit.ts, gateway, admin,
    // supervisor, ipc, spool or seal may reach the store's code or the ClickHouse clients
    // (chDB alone is hundreds of MiB resident). Written as a closed set rather than a
    // `reachable` rule, because reachability in dependency-cruiser follows every edge,
    // type-only ones included, and cannot leave out one edge (the test seam below): every
    // module the gateway process may load (all of src but OUTSIDE_GATEWAY) imports at run
    // time only modules of that same set, so no path from any of them ever leaves it.
    // `import type`, and imports used only as types, compile to nothing: not counted
    // (tsPreCompilationDeps 'specify' marks the latter pre-compilation-only; every other rule still sees them).
    {
      name: 'lean-gateway-process',
      comment: `The gateway process never loads the audit store: a module it may load imports ${OUTSIDE_GATEWAY} only as types (the store runs in its own process; the admin port reaches its API over a socket, src/admin/audit-store-proxy.ts).`,
      severity: 'error',
      from: { path: '^src/', pathNot: `${OUTSIDE_GATEWAY}|${STORE_SEAM}` },
      to: { path: OUTSIDE_GATEWAY, dependencyTypesNot: ['type-only', 'pre-compilation-only'] },
    },
    // The test seam: buildGateway(..., { store: 'inline' }) runs the store service inside the
    // gateway for tests that want the AuditStore object. It loads src/store lazily (require()
    // or import(), evaluated only when asked), so `npm start` never does; that one edge, from
    // STORE_SEAM to src/store/index.ts, is the only one allowed out of the set.
    {
      name: 'lean-gateway-process-seam',
      comment: `${STORE_SEAM} loads the store only lazily (require() or import() of src/store/index.ts, for the in-process test seam), never with a static import, and nothing else of ${OUTSIDE_GATEWAY}.`,
      severity: 'error',
      from: { path: STORE_SEAM },
      to: { path: OUTSIDE_GATEWAY, dependencyTypesNot: ['type-only', 'pre-compilation-only', 'require', 'dynamic-import'] },
    },
    {
      name: 'lean-gateway-process-seam-target',
      comment: `${STORE_SEAM} may load lazily only src/store/index.ts.`,
      severity: 'error',
      from: { path: STORE_SEAM },
      to: { path: OUTSIDE_GATEWAY, pathNot: '^src/store/index\\.ts$', dependencyTypes: ['require', 'dynamic-import'] },
    },
    {
      name: 'no-test-code-in-src',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    { name: 'no-circular', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: 'specify',
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};

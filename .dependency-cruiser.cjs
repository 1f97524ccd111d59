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
  ['gateway', 'shipper', 'admin'],
  ['investigate'],
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
    {
      name: 'lean-no-dynamic-import',
      comment:
        'The lean gateway process rule (.dependency-cruiser-lean.cjs) does not follow dynamic imports, for the in-process test seam of src/app.ts; so no other module of the gateway process may import dynamically.',
      severity: 'error',
      from: { path: '^src/(main|app-audit)\\.ts$|^src/(gateway|admin|supervisor|ipc|spool|seal)/' },
      to: { dependencyTypes: ['dynamic-import'] },
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
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};

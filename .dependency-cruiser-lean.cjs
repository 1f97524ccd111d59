/**
 * The lean gateway process (issue 13, README "The audit store process"): the proxy's
 * process keeps the hot path, the spool writer, the admin port and the supervisor, and
 * must not load the audit store's code or the ClickHouse clients (chDB alone is hundreds of
 * MiB resident). This rule follows every runtime import path, however long, from the
 * gateway's modules to the store's (npm run lint:deps runs it after .dependency-cruiser.cjs).
 *
 * Runtime imports only: this run reads the code as TypeScript compiles it
 * (tsPreCompilationDeps: false), so `import type` and imports used only as types, which
 * compile to nothing, are not followed. The layer rules in .dependency-cruiser.cjs still
 * see them.
 *
 * Dynamic imports are not followed here (exclude.dynamic): the in-process test seam of
 * src/app.ts loads the store with `await import(...)` only when asked to run it inside the
 * gateway (tests), never in `npm start`. So that this cannot hide a real path, the
 * rule `lean-no-dynamic-import` in .dependency-cruiser.cjs allows a dynamic import in the
 * lean modules in src/app.ts only.
 */
const LEAN = '^src/(main|app|app-audit)\\.ts$|^src/(gateway|admin|supervisor|ipc|spool|seal)/';
const STORE = '^src/(clickhouse|store|investigate|shipper)/|node_modules/(chdb|@clickhouse/client)/';

module.exports = {
  forbidden: [
    {
      name: 'lean-gateway-process',
      comment:
        'The gateway process (src/main.ts, app.ts, app-audit.ts, gateway, admin, supervisor, ipc, spool, seal) never loads the audit store: no runtime import path from it reaches src/clickhouse, src/store, src/investigate, src/shipper, chdb or @clickhouse/client. The store runs in its own process (src/store); the admin port reaches it over its socket (src/admin/audit-store-proxy.ts).',
      severity: 'error',
      from: { path: LEAN },
      to: { path: STORE, reachable: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { dynamic: true },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};

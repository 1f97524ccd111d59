#!/usr/bin/env node
// Builds the audit explorer page (web/explorer) into dist/explorer: one script bundle and
// one style sheet, uPlot's included, so the page needs nothing from the network (no CDN)
// and runs under the admin port's strict Content-Security-Policy (no inline script or
// style). Part of `npm run build`; the gateway serves dist/explorer at GET / and /explorer/.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'web', 'explorer');
const out = join(root, 'dist', 'explorer');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { explorer: join(source, 'main.ts'), 'explorer-style': join(source, 'explorer.css') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'iife',
  // Chromium, Firefox and Safari of the last few years: what an NHS desktop runs.
  target: ['chrome110', 'firefox115', 'safari16'],
  legalComments: 'eof',
  logLevel: 'warning',
});
for (const file of ['index.html', 'favicon.svg']) copyFileSync(join(source, file), join(out, file));

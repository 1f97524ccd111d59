import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { loopbackHostOnly } from '../../../src/admin/admin-bind';
import { explorerRouter } from '../../../src/admin/explorer-route';
import { tempDir } from '../../helpers/test-kit';

/** A built page of three small files: what scripts/build-explorer.mjs writes, in miniature. */
function builtPage(): string {
  const dir = join(tempDir('explorer-built-'), 'explorer');
  mkdirSync(dir);
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title><script src="/explorer/explorer.js" defer></script>');
  writeFileSync(join(dir, 'explorer.js'), 'void 0;');
  writeFileSync(join(dir, 'explorer-style.css'), 'body{}');
  writeFileSync(join(dir, '.secret'), 'no');
  return dir;
}

function app(guards: express.RequestHandler[], dir: string | null) {
  const a = express();
  a.use(explorerRouter(guards, dir));
  a.use((_req, res) => void res.status(404).json({ error: 'not found' }));
  return a;
}

describe('explorer route', () => {
  const dir = builtPage();

  test('GET / and HEAD /: the page, its CSP, no-cache', async () => {
    for (const method of ['get', 'head'] as const) {
      const r = await request(app([], dir))[method]('/');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    }
  });

  test('only the built files under /explorer/: no directory listing, no dot files, no way out', async () => {
    const a = app([], dir);
    expect((await request(a).get('/explorer/explorer.js')).status).toBe(200);
    for (const path of [
      '/explorer/',
      '/explorer',
      '/explorer/.secret',
      '/explorer/%2e%2e/explorer/index.html',
      '/explorer/..%2f..%2fpackage.json',
      '/index.html',
    ])
      expect([path, (await request(a).get(path)).status]).toEqual([path, 404]);
  });

  test('without tokens, like every admin route, only a loopback Host is answered (DNS rebinding)', async () => {
    const a = app([loopbackHostOnly], dir);
    expect((await request(a).get('/').set('Host', '127.0.0.1:9090')).status).toBe(200);
    for (const path of ['/', '/explorer/explorer.js']) {
      const r = await request(a).get(path).set('Host', 'attacker.example:9090');
      expect(r.status).toBe(403);
      expect(r.body.message).toContain('127.0.0.1');
    }
  });

  test('a gateway started without the built page says how to build it', async () => {
    const r = await request(app([], null)).get('/');
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ error: 'explorer page not built', message: expect.stringContaining('npm run build') });
  });
});

/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers, read by shape in the assertions */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Express } from 'express';
import { AdminTokens, auditStoreProxy, createAdminApp, type StoreState } from '../../src/admin';
import type { AuditStore } from '../../src/clickhouse';
import { createInvestigationsApp, serveOnSocket } from '../../src/investigate';
import { schemaReady } from '../helpers/audit-kit';
import {
  abandonAfter,
  adminTokensFile,
  directoryYaml,
  rawExchange,
  send,
  startGateway,
  tempDir,
  waitFor,
  type Reply,
  type RunningGateway,
} from '../helpers/test-kit';

/**
 * The admin port hands /audit/* to the investigations API on the store's Unix socket
 * (README "Investigations", "The audit store process"): real sockets on both sides, the
 * real embedded engine behind. Every answer through the proxy is compared with the same
 * request made straight to the API on TCP.
 */
const AUDITOR = 'alice-0c5d8e1f2a';
const METRICS = 'scrape-77ab3c9d1e';
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
const alice = bearer(AUDITOR);
const BULK = 30_000;
const SEPT = 'from=2026-09-01T00:00:00Z&to=2026-09-02T00:00:00Z';

let gw: RunningGateway;
let store: AuditStore;
let api: Express;
/** What the store's side saw: each request's raw header lines, and whether its answer finished when it closed. */
const storeSide: Array<{ url: string; rawHeaders: string[]; closed?: { finished: boolean }; written: () => number }> = [];
let direct: Server;
let directUrl: string;
let socketPath: string;
let socketServer: Server;
let adminUrl: string;
const state: StoreState = { up: true };
const servers: Server[] = [];

/** The investigations API with a record of what reached it. */
const observed: RequestListener = (req, res) => {
  const socket = req.socket;
  const seen: (typeof storeSide)[number] = { url: req.url ?? '', rawHeaders: req.rawHeaders, written: () => socket.bytesWritten };
  storeSide.push(seen);
  res.on('close', () => (seen.closed = { finished: res.writableFinished }));
  api(req as never, res as never);
};

function listen(server: Server): Promise<string> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** An admin app (health, readiness, metrics, explorer) whose /audit/* goes to `path`. */
async function adminFor(path: string, storeState: () => StoreState = () => state, options = {}): Promise<string> {
  const tokens = AdminTokens.load(tokensFile);
  const app = createAdminApp(new Registry(), [{ name: 'directory', check: () => ({ ok: true }) }], auditStoreProxy(path, storeState, options), {
    tokens,
    metricsOpen: false,
  });
  return listen(createServer(app));
}

let tokensFile: string;

beforeAll(async () => {
  tokensFile = adminTokensFile([
    { name: 'prometheus', role: 'metrics', token: METRICS },
    { name: 'alice', role: 'auditor', token: AUDITOR },
  ]);
  gw = await startGateway(
    directoryYaml({ metadata: 'http://127.0.0.1:9/A20047/STU3/1/gpconnect/fhir' }),
    {
      AUDIT_ENABLED: 'true',
      AUDIT_BATCH_MAX_AGE_MS: '50',
      ADMIN_TOKENS_FILE: tokensFile,
    },
    { store: 'inline' },
  );
  store = gw.gateway.audit!.store!;
  await schemaReady(store);
  await (store as unknown as { client: { command(p: { query: string }): Promise<unknown> } }).client.command({
    query: `INSERT INTO ${store.table} (event_id, version, trace_id, received_at, completed_at, duration_ms, consumer_asid, consumer_ods,
      provider_asid, provider_ods, interaction_id, method, status, outcome, environment, jwt_requesting_organization)
    SELECT generateUUIDv4(number), 2, toString(generateUUIDv4(number + ${BULK})),
      toDateTime64('2026-09-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 11),
      toDateTime64('2026-09-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 11 + 5), 5,
      '200000000359', if(number % 3 = 0, 'PRX01', 'PRX02'), '918999198993', 'A20047', 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
      'GET', if(number % 7 = 0, 502, 200), if(number % 7 = 0, 'upstream_error', 'forwarded'), 'live', 'PRX01' FROM numbers(${BULK})`,
  });
  api = createInvestigationsApp(
    store,
    gw.gateway.log,
    { tokens: AdminTokens.load(tokensFile), auditPublicKey: gw.gateway.audit!.signing.publicKey },
    { exportMaxRows: 1_000_000, sqlMaxRows: 5, sqlTimeoutMs: 5000, instance: 'proxy-test' },
  );
  direct = createServer(observed);
  directUrl = await listen(direct);
  socketPath = join(tempDir('store-sock-'), 'store.sock');
  socketServer = await serveOnSocket(observed, socketPath);
  adminUrl = await adminFor(socketPath);
}, 90_000);

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  socketServer?.closeAllConnections();
  socketServer?.close();
  await gw?.stop();
});

/** The same request straight to the API and through the admin port. */
async function both(path: string, options: Parameters<typeof send>[1] = {}): Promise<{ direct: Reply; proxied: Reply }> {
  const d = await send(`${directUrl}${path}`, options);
  const p = await send(`${adminUrl}${path}`, options);
  return { direct: d, proxied: p };
}

/** Header fields that must match between the two answers (the rest are connection details: date, transfer-encoding, keep-alive). */
function answerHeaders(r: Reply): Record<string, unknown> {
  const { date: _d, connection: _c, 'keep-alive': _k, 'transfer-encoding': _t, 'content-disposition': _cd, ...rest } = r.headers;
  return rest;
}

function expectSameAnswer(r: { direct: Reply; proxied: Reply }, status: number): void {
  expect(r.direct.status).toBe(status);
  expect(r.proxied.status).toBe(status);
  expect(answerHeaders(r.proxied)).toEqual(answerHeaders(r.direct));
  expect(r.proxied.body.equals(r.direct.body)).toBe(true);
}

describe('answers through the proxy are the API’s own', () => {
  test('search and summary: same status, headers and bytes', async () => {
    expectSameAnswer(await both(`/audit/transactions?${SEPT}&consumer_ods=PRX01&limit=50`, { headers: alice }), 200);
    expectSameAnswer(await both(`/audit/summary?${SEPT}&group_by=consumer_ods,outcome`, { headers: alice }), 200);
    expectSameAnswer(await both(`/audit/transactions?${SEPT}&consumer_ods=not%20valid`, { headers: alice }), 400);
    expectSameAnswer(await both('/audit/no-such-route', { headers: alice }), 404);
    // Express matches routes case-insensitively: so does the admin port's hand-over.
    expectSameAnswer(await both(`/AUDIT/TRANSACTIONS?${SEPT}&limit=2`, { headers: alice }), 200);
  });

  test('SQL (a POST body, sent with Content-Length and chunked) and verify: same answers', async () => {
    const body = JSON.stringify({
      sql: "SELECT outcome, count() AS n FROM spine_audit.transactions WHERE consumer_ods = 'PRX02' GROUP BY outcome ORDER BY outcome",
    });
    const r = await both('/audit/sql', { method: 'POST', headers: { ...alice, 'Content-Type': 'application/json' }, body });
    // The one difference: how long the query took (and so the body's length).
    const timeless = (reply: Reply) => ({
      status: reply.status,
      headers: { ...answerHeaders(reply), 'content-length': '' },
      json: { ...JSON.parse(reply.body.toString()), elapsed_ms: 0 },
    });
    expect(timeless(r.proxied)).toEqual(timeless(r.direct));
    expect(r.proxied.status).toBe(200);
    expect(timeless(r.proxied).json.rows).toEqual([
      ['forwarded', 17143],
      ['upstream_error', 2857],
    ]);
    // Chunked on the way in: the proxy forwards the body chunked again (raw bytes, so the framing is the caller's).
    const chunked = (port: number) =>
      rawExchange(
        port,
        `POST /audit/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${AUDITOR}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
          `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      );
    const [viaProxy, straight] = await Promise.all([chunked(portOf(adminUrl)), chunked(portOf(directUrl))]);
    expect(viaProxy).toMatch(/^HTTP\/1\.1 200 /);
    expect({ ...jsonOf(viaProxy), elapsed_ms: 0 }).toEqual({ ...jsonOf(straight), elapsed_ms: 0 });
    expectSameAnswer(await both('/audit/verify?from=2026-09-01T00:00:00Z&to=2026-09-01T01:00:00Z', { headers: alice }), 200);
    expectSameAnswer(await both('/audit/public-key', { headers: alice }), 200);
  });

  test('401 without a token, with an unknown one, with two Authorization lines; 403 with a metrics token: as the API answers them', async () => {
    const path = `/audit/transactions?${SEPT}&limit=1`;
    expectSameAnswer(await both(path), 401);
    expectSameAnswer(await both(path, { headers: bearer('nope-0000000000') }), 401);
    // Node keeps the first of two Authorization lines; the API refuses two, so the proxy must pass both on as sent.
    expectSameAnswer(
      await both(path, { headers: ['Host', '127.0.0.1', 'Authorization', `Bearer ${AUDITOR}`, 'Authorization', 'Bearer nope-0000000000'] }),
      401,
    );
    expectSameAnswer(await both(path, { headers: bearer(METRICS) }), 403);
  });

  test('a large CSV export streams through byte for byte (all but the manifest’s own export time)', async () => {
    const path = `/audit/transactions?${SEPT}&format=csv`;
    const { direct: d, proxied: p } = await both(path, { headers: alice });
    expect(d.status).toBe(200);
    expect(p.status).toBe(200);
    expect(p.headers['content-type']).toBe(d.headers['content-type']);
    expect(p.headers['content-disposition']).toMatch(/^attachment; filename="spine-audit-\d{8}T\d{6}Z\.csv"$/);
    const [dRows, dManifest] = splitManifest(d.body);
    const [pRows, pManifest] = splitManifest(p.body);
    expect(pRows.length).toBeGreaterThan(8 * 1024 * 1024);
    expect(pRows.equals(dRows)).toBe(true);
    expect(pManifest.export.rows).toBe(BULK);
    expect(pManifest.export.sha256).toBe(createHash('sha256').update(pRows).digest('hex'));
    expect({ ...pManifest.export, exported_at: '' }).toEqual({ ...dManifest.export, exported_at: '' });
  }, 60_000);
});

describe('backpressure', () => {
  test('a caller that stops reading holds the store’s export (the proxy buffers nothing), which then completes', async () => {
    const before = storeSide.length;
    const result = await new Promise<{ heldAt: number; finishedWhileHeld: boolean; total: number; complete: boolean }>((resolve, reject) => {
      const req = request(`${adminUrl}/audit/transactions?${SEPT}&format=csv`, { headers: alice, agent: false }, (res) => {
        let total = 0;
        let heldAt = -1;
        let finishedWhileHeld = true;
        res.once('data', () => {
          res.pause();
          // Stopped reading: give the store time to fill every buffer between it and the caller.
          setTimeout(() => {
            heldAt = storeSide[before].written();
            finishedWhileHeld = storeSide[before].closed !== undefined;
            res.resume();
          }, 3000);
        });
        res.on('data', (c: Buffer) => (total += c.length));
        res.on('end', () => resolve({ heldAt, finishedWhileHeld, total, complete: res.complete }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    process.stdout.write(
      `export held by a caller not reading: the store had written ${(result.heldAt / 1024 / 1024).toFixed(1)} MiB of ${(result.total / 1024 / 1024).toFixed(1)}\n`,
    );
    expect(result.complete).toBe(true);
    expect(result.total).toBeGreaterThan(8 * 1024 * 1024);
    // The store waited: what it wrote is what the socket buffers hold (loopback TCP's grow to megabytes) and a slice in flight, not the file.
    expect(result.finishedWhileHeld).toBe(false);
    expect(result.heldAt).toBeLessThan(result.total - 1024 * 1024);
  }, 60_000);
});

describe('the caller’s address', () => {
  /** The access-log rows (client_ip) of requests whose validated query holds `marker` (a consumer_ods value). */
  async function clientIps(marker: string, n: number): Promise<string[]> {
    let ips: string[] = [];
    await waitFor(
      async () => {
        const rows = await store.queryRows<{ client_ip: string }>(
          `SELECT client_ip FROM ${store.database}.access_log WHERE position(query, {m:String}) > 0 ORDER BY at`,
          { m: marker },
        );
        ips = rows.map((r) => r.client_ip);
        return ips.length >= n;
      },
      15_000,
      `${n} access-log rows for ${marker}`,
      100,
    );
    return ips;
  }

  test('the proxy sets x-spine-peer to the peer address; copies the caller sends (any case, several) never reach the store', async () => {
    const marker = `PEER${randomUUID().slice(0, 4).toUpperCase()}`;
    const before = storeSide.length;
    const r = await send(`${adminUrl}/audit/transactions?${SEPT}&consumer_ods=${marker}`, {
      headers: ['Host', '127.0.0.1', 'Authorization', `Bearer ${AUDITOR}`, 'X-Spine-Peer', '10.6.6.6', 'x-spine-peer', '10.7.7.7', 'X-SPINE-PEER', '::1'],
    });
    expect(r.status).toBe(200);
    const seen = storeSide.slice(before);
    expect(seen).toHaveLength(1);
    const peers = [];
    for (let i = 0; i < seen[0].rawHeaders.length; i += 2) if (seen[0].rawHeaders[i].toLowerCase() === 'x-spine-peer') peers.push(seen[0].rawHeaders[i + 1]);
    expect(peers).toEqual(['127.0.0.1']);
    expect(await clientIps(marker, 1)).toEqual(['127.0.0.1']);
  });

  test('on TCP (the API served directly) the header is ignored: the connection’s address is recorded', async () => {
    const marker = `PEER${randomUUID().slice(0, 4).toUpperCase()}`;
    const r = await send(`${directUrl}/audit/transactions?${SEPT}&consumer_ods=${marker}`, { headers: { ...alice, 'X-Spine-Peer': '10.6.6.6' } });
    expect(r.status).toBe(200);
    expect(await clientIps(marker, 1)).toEqual(['127.0.0.1']);
  });

  test('on the socket, a request without the header (not from the proxy) is recorded with no address, never a made-up one', async () => {
    const marker = `PEER${randomUUID().slice(0, 4).toUpperCase()}`;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { socketPath, path: `/audit/transactions?${SEPT}&consumer_ods=${marker}`, headers: { ...alice, 'X-Spine-Peer': 'not-an-ip' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(await clientIps(marker, 1)).toEqual(['']);
  });
});

describe('when the store cannot answer', () => {
  function expectUnavailable(r: Reply): any {
    expect(r.status).toBe(503);
    expect(r.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(r.body.toString());
    expect(body.error).toBe('audit store unavailable');
    expect(body.message).toMatch(/try again shortly/);
    return body;
  }

  test('no socket file: 503 at once, with a message a person can act on', async () => {
    const url = await adminFor(join(tempDir('no-store-'), 'store.sock'));
    const started = Date.now();
    const body = expectUnavailable(await send(`${url}/audit/transactions?${SEPT}`, { headers: alice }));
    expect(body.message).toMatch(/restarting/);
    expect(body.message).toMatch(/kept on disk/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a socket file nobody listens on (a store killed): 503', async () => {
    const path = staleSocket();
    expect(lstatSync(path).isSocket()).toBe(true);
    const url = await adminFor(path);
    expectUnavailable(await send(`${url}/audit/summary`, { headers: alice }));
    expectUnavailable(
      await send(`${url}/audit/sql`, { method: 'POST', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{"sql":"SELECT 1"}' }),
    );
  });

  test('the supervisor says the store is down: 503 with its detail, and nothing is sent to the socket', async () => {
    const before = storeSide.length;
    const url = await adminFor(socketPath, () => ({ up: false, detail: 'restarting after exit by SIGKILL (attempt 2, next in 1 s)' }));
    const body = expectUnavailable(await send(`${url}/audit/transactions?${SEPT}`, { headers: alice }));
    expect(body.detail).toBe('restarting after exit by SIGKILL (attempt 2, next in 1 s)');
    expect(storeSide.length).toBe(before);
  });

  test('a store that takes the connection and never answers: 503 after the answer timeout, not a hang', async () => {
    const path = join(tempDir('mute-store-'), 'store.sock');
    const mute = await serveOnSocket(() => {}, path);
    try {
      const url = await adminFor(path, () => ({ up: true }), { answerTimeoutMs: 300 });
      const started = Date.now();
      const body = expectUnavailable(await send(`${url}/audit/summary`, { headers: alice }));
      expect(body.message).toMatch(/did not answer within/);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      mute.closeAllConnections();
      mute.close();
    }
  });

  test('a store whose connection drops before its answer starts (it crashed on the request): 503', async () => {
    const path = join(tempDir('crashing-store-'), 'store.sock');
    const crashing = await serveOnSocket((req) => req.socket.destroy(), path);
    try {
      const url = await adminFor(path);
      expectUnavailable(await send(`${url}/audit/summary`, { headers: alice }));
      expectUnavailable(
        await send(`${url}/audit/sql`, { method: 'POST', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{"sql":"SELECT 1"}' }),
      );
    } finally {
      crashing.close();
    }
  });

  test('health, readiness, metrics and the explorer page answer while the store is down', async () => {
    const url = await adminFor(join(tempDir('no-store-'), 'store.sock'), () => ({ up: false }));
    expect((await send(`${url}/healthz`)).status).toBe(200);
    expect((await send(`${url}/readyz`)).status).toBe(200);
    expect((await send(`${url}/metrics`)).status).toBe(401);
    expect((await send(`${url}/metrics`, { headers: bearer(METRICS) })).status).toBe(200);
    const page = await send(`${url}/`);
    expect(page.body.toString()).not.toMatch(/audit store unavailable/);
    expect(page.status).toBe(existsSync(join(__dirname, '..', '..', 'dist', 'explorer', 'index.html')) ? 200 : 503);
  });

  test('a store that dies mid-export: the caller’s download is cut off, never completed; then 503', async () => {
    const path = join(tempDir('dying-store-'), 'store.sock');
    const dying = await serveOnSocket(observed, path);
    const url = await adminFor(path);
    const outcome = await new Promise<{ complete: boolean; bytes: number; error: string }>((resolve) => {
      let bytes = 0;
      let error = '';
      const req = request(`${url}/audit/transactions?${SEPT}&format=csv`, { headers: alice, agent: false }, (res: IncomingMessage) => {
        expect(res.statusCode).toBe(200);
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > 256 * 1024 && dying.listening) {
            // The store "dies": its listener and every connection go at once.
            dying.close();
            dying.closeAllConnections();
          }
        });
        res.on('error', (e) => (error = e.message));
        res.on('close', () => resolve({ complete: res.complete, bytes, error }));
      });
      req.on('error', (e) => (error = e.message));
      req.end();
    });
    expect(outcome.complete).toBe(false);
    expect(outcome.bytes).toBeLessThan(10 * 1024 * 1024);
    expect(existsSync(path)).toBe(false);
    expectUnavailable(await send(`${url}/audit/summary`, { headers: alice }));
  }, 60_000);

  test('a caller that goes away mid-export aborts the store’s request (the store side sees close before the end)', async () => {
    const before = storeSide.length;
    await abandonAfter(`${adminUrl}/audit/transactions?${SEPT}&format=csv`, alice, 128 * 1024);
    await waitFor(() => storeSide.slice(before).some((s) => s.closed !== undefined), 10_000, 'the store side to see close');
    const seen = storeSide.slice(before).filter((s) => s.url.includes('format=csv'));
    expect(seen).toHaveLength(1);
    expect(seen[0].closed).toEqual({ finished: false });
  }, 30_000);
});

describe('serveOnSocket', () => {
  test('mode 0600; a stale socket file is replaced; a regular file or a live socket is left alone and refused; close removes it', async () => {
    const path = staleSocket();
    const server = await serveOnSocket(observed, path);
    expect(lstatSync(path).mode & 0o777).toBe(0o600);
    const r = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: path, path: '/audit/public-key', headers: alice }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(r).toBe(200);
    // Live: a second server is refused and the first keeps serving.
    await expect(serveOnSocket(observed, path)).rejects.toMatchObject({ code: 'GW_ERR_STORE_SOCKET_IN_USE' });
    expect(await connects(path)).toBe(true);
    server.close();
    expect(existsSync(path)).toBe(false);

    const file = join(tempDir('not-a-socket-'), 'store.sock');
    writeFileSync(file, 'precious');
    await expect(serveOnSocket(observed, file)).rejects.toMatchObject({ code: 'GW_ERR_STORE_SOCKET_PATH' });
    expect(readFileSync(file, 'utf8')).toBe('precious');

    // Longer than sun_path allows: said plainly, not a truncated name somewhere else.
    const long = join(tempDir('long-'), 'x'.repeat(120), 'store.sock');
    await expect(serveOnSocket(observed, long)).rejects.toMatchObject({ code: 'GW_ERR_STORE_SOCKET_PATH', message: expect.stringMatching(/shorter path/) });
  });
});

/** A socket file with nothing behind it, as a store killed with SIGKILL leaves (bound, renamed away from libuv's unlink on close). */
function staleSocket(): string {
  const dir = tempDir('stale-sock-');
  const path = join(dir, 'store.sock');
  const server = createNetServer();
  server.listen(join(dir, 'bound.sock'));
  renameSync(join(dir, 'bound.sock'), path);
  server.close();
  return path;
}

function connects(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const portOf = (url: string) => Number(new URL(url).port);
const jsonOf = (raw: string) => {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  return JSON.parse(body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1));
};

/** An export's CSV bytes before its manifest line, and the manifest. */
function splitManifest(body: Buffer): [Buffer, any] {
  const at = body.lastIndexOf('\r\n# {');
  return [
    body.subarray(0, at + 2),
    JSON.parse(
      body
        .subarray(at + 4)
        .toString()
        .trim(),
    ),
  ];
}

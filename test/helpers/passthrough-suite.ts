import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FIXTURES, METADATA, STRUCTURED, directoryYaml, readBody, sspHeaders, startGateway, type RunningGateway, type TestProvider } from './test-kit';
import type { Transport } from './transport';

/**
 * The pass-through contract (interface.md): bodies byte for byte both ways, request line
 * and headers unchanged (case, order, repeats), hop-by-hop handling, HTTP semantics. One
 * suite, run over each transport: plain HTTP, and mutual TLS on both legs.
 */
export function passthroughSuite(makeTransport: () => Transport): void {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  /** What the provider saw of the last request, and what it answers next. */
  interface Seen {
    method: string;
    url: string;
    rawHeaders: string[];
    bodySha: string;
    bodyLength: number;
  }
  let seen: Seen;
  let reply: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

  let provider: TestProvider;
  let gw: RunningGateway;
  let t: Transport;
  let ROOT: string;

  beforeAll(async () => {
    t = makeTransport();
    provider = await t.startProvider(async (req, res) => {
      const body = await readBody(req);
      seen = { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, bodySha: sha(body), bodyLength: body.length };
      reply(req, res, body);
    });
    ROOT = provider.root;
    gw = await startGateway(
      directoryYaml({ metadata: ROOT, structured: `${t.proto}://127.0.0.1:${provider.port}/A20047/STU3/1/gpconnect/structured/fhir` }),
      t.gatewayEnv,
    );
  });
  afterAll(async () => {
    // Set-up may have failed (a program not installed): its one line is the report.
    await gw?.stop();
    await provider?.close();
  });
  beforeEach(() => {
    reply = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/fhir+json' });
      res.end('{}');
    };
  });

  /** Drops the field lines each hop owns, to compare what was relayed. */
  function endToEnd(raw: string[], drop: string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) if (!drop.includes(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
    return out;
  }

  describe('bodies pass byte for byte, both directions', () => {
    test.each([0, 1, 64 * 1024, 5 * 1024 * 1024])('%i random bytes up and down', async (size) => {
      const up = randomBytes(size);
      const down = randomBytes(size);
      reply = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(down.length) });
        res.end(down);
      };
      const r = await t.send(gw.url(`${ROOT}/metadata`), {
        method: 'POST',
        headers: { ...sspHeaders(), 'Content-Type': 'application/octet-stream' },
        body: up,
      });
      expect(r.status).toBe(200);
      expect(seen.bodyLength).toBe(size);
      expect(seen.bodySha).toBe(sha(up));
      expect(r.body.length).toBe(size);
      expect(sha(r.body)).toBe(sha(down));
    });

    test('a chunked upload arrives whole, still chunked', async () => {
      const parts = [randomBytes(1000), randomBytes(70_000), randomBytes(3)];
      const r = await new Promise<number>((resolve, reject) => {
        const req = t.request(gw.url(`${ROOT}/metadata`), { method: 'PUT', headers: sspHeaders(), agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        for (const p of parts) req.write(p);
        req.end();
      });
      expect(r).toBe(200);
      expect(seen.bodySha).toBe(sha(Buffer.concat(parts)));
      const te = seen.rawHeaders.findIndex((h) => h.toLowerCase() === 'transfer-encoding');
      expect(seen.rawHeaders[te + 1]).toBe('chunked');
    });

    test('gzip stays gzip', async () => {
      const zipped = gzipSync(Buffer.from(JSON.stringify({ resourceType: 'Bundle', entry: Array(200).fill({ a: 'b' }) })));
      reply = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Encoding': 'gzip', 'Content-Length': String(zipped.length) });
        res.end(zipped);
      };
      const r = await t.send(gw.url(`${ROOT}/metadata`), { headers: { ...sspHeaders(), 'Accept-Encoding': 'gzip' } });
      expect(r.headers['content-encoding']).toBe('gzip');
      expect(r.body.equals(zipped)).toBe(true);
    });

    test('every GP Connect example payload goes up and comes back intact', async () => {
      const files: string[] = [];
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const full = join(dir, name);
          if (statSync(full).isDirectory()) walk(full);
          else if (name.endsWith('.json')) files.push(full);
        }
      };
      walk(FIXTURES);
      expect(files.length).toBeGreaterThan(30);
      for (const file of files) {
        const bytes = readFileSync(file);
        reply = (_req, res) => {
          res.writeHead(200, { 'Content-Type': 'application/fhir+json;charset=utf-8' });
          res.end(bytes);
        };
        const r = await t.send(gw.url(`${ROOT.replace('/fhir', '/structured/fhir')}/Patient/$gpc.getstructuredrecord`), {
          method: 'POST',
          headers: { ...sspHeaders({ 'Ssp-InteractionID': STRUCTURED }), 'Content-Type': 'application/fhir+json;charset=utf-8' },
          body: bytes,
        });
        expect(r.status).toBe(200);
        expect(seen.bodySha).toBe(sha(bytes));
        expect(r.body.equals(bytes)).toBe(true);
      }
    });
  });

  describe('request line and headers pass unchanged', () => {
    test('path and percent-encoded query exactly as sent', async () => {
      const pathAndQuery = '/Patient?identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9000000009&identifier=raw|pipe&_format=json&empty=&x=%E2%9C%93';
      const raw = await t.raw(
        gw.proxyPort,
        `GET /${ROOT}${pathAndQuery} HTTP/1.1\r\nHost: gw\r\n${Object.entries(sspHeaders())
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n')}\r\nConnection: close\r\n\r\n`,
      );
      expect(raw.slice(9, 12)).toBe('200');
      expect(seen.url).toBe(`/A20047/STU3/1/gpconnect/fhir${pathAndQuery}`);
    });

    test("request header names keep their case, order and repeats; Host becomes the provider's", async () => {
      const lines = [
        ['Host', 'gateway.example'],
        ['Ssp-TraceID', '629EA9BA-A077-4D99-B289-7A9B19FD4E03'],
        ['sSP-fROM', '200000000359'],
        ['SSP-TO', '918999198993'],
        ['ssp-interactionid', METADATA],
        ['X-Custom-ODD', 'first'],
        ['Authorization', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.'],
        ['x-custom-odd', 'second'],
        ['Accept', 'application/fhir+json'],
        ['Cookie', 'a=1'],
        ['Cookie', 'b=2'],
        ['X-Empty', ''],
      ];
      const text = `GET /${ROOT}/metadata HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\nConnection: close\r\n\r\n`;
      const raw = await t.raw(gw.proxyPort, text);
      expect(raw.slice(9, 12)).toBe('200');
      const expected = lines.flat();
      expected[1] = `127.0.0.1:${provider.port}`;
      expect(endToEnd(seen.rawHeaders, ['connection', 'forwarded'])).toEqual(expected);
      expect(seen.method).toBe('GET');
    });

    test('response status, reason phrase, header case, order and repeats (two Set-Cookie) arrive unchanged, with nothing of ours added', async () => {
      const providerHeaders = [
        'Content-Type',
        'application/fhir+json',
        'set-Cookie',
        'a=1; Path=/',
        'X-Dup',
        'one',
        'Set-Cookie',
        'b=2; Path=/',
        'x-dup',
        'two',
        'ETag',
        'W/"3"',
        'Cache-Control',
        'no-store',
        'Content-Length',
        '2',
      ];
      reply = (_req, res) => {
        res.sendDate = false;
        res.writeHead(201, 'Created Nicely', providerHeaders);
        res.end('{}');
      };
      const r = await t.send(gw.url(`${ROOT}/metadata`), { headers: sspHeaders() });
      expect(r.status).toBe(201);
      expect(r.statusMessage).toBe('Created Nicely');
      expect(endToEnd(r.rawHeaders, ['connection', 'keep-alive'])).toEqual(providerHeaders);
      expect(r.headers['content-security-policy']).toBeUndefined();
      expect(r.headers['date']).toBeUndefined();
    });

    test('hop-by-hop headers stop at the gateway, both ways (RFC 9110 7.6.1)', async () => {
      reply = (_req, res) => {
        res.writeHead(200, ['Connection', 'X-Provider-Hop', 'X-Provider-Hop', 'secret', 'Keep-Alive', 'timeout=9', 'X-End', 'kept', 'Content-Length', '0']);
        res.end();
      };
      const text =
        `GET /${ROOT}/metadata HTTP/1.1\r\nHost: gw\r\n${Object.entries(sspHeaders())
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n')}\r\n` +
        'Connection: close, X-Consumer-Hop\r\nX-Consumer-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n';
      const raw = await t.raw(gw.proxyPort, text);
      const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      // (Upgrade is refused outright: consumer-connection.test.ts.)
      for (const hop of ['x-consumer-hop', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) expect(names).not.toContain(hop);
      expect(names).toContain('x-kept');
      expect(raw).not.toMatch(/X-Provider-Hop/i);
      expect(raw).not.toMatch(/timeout=9/);
      expect(raw).toMatch(/\r\nX-End: kept\r\n/);
    });

    test('RFC 7239 Forwarded is added as a new field line; an existing one is left alone', async () => {
      await t.send(gw.url(`${ROOT}/metadata`), { headers: { ...sspHeaders(), Forwarded: 'for=192.0.2.60;proto=https' } });
      const values = seen.rawHeaders.flatMap((h, i) => (i % 2 === 0 && h.toLowerCase() === 'forwarded' ? [seen.rawHeaders[i + 1]] : []));
      expect(values).toEqual(['for=192.0.2.60;proto=https', `for=127.0.0.1;proto=${t.proto}`]);
      const relayed = endToEnd(seen.rawHeaders, ['connection']);
      expect(relayed[relayed.length - 2]).toBe('Forwarded');
    });

    test('FORWARDED_HEADER=false adds nothing', async () => {
      const quiet = await startGateway(directoryYaml({ metadata: ROOT }), { ...t.gatewayEnv, FORWARDED_HEADER: 'false' });
      try {
        await t.send(quiet.url(`${ROOT}/metadata`), { headers: sspHeaders() });
        expect(seen.rawHeaders.map((h) => h.toLowerCase())).not.toContain('forwarded');
      } finally {
        await quiet.stop();
      }
    });
  });

  describe('HTTP semantics', () => {
    test('HEAD: headers with Content-Length, no body', async () => {
      reply = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': '1234' });
        res.end();
      };
      const r = await t.send(gw.url(`${ROOT}/metadata`), { method: 'HEAD', headers: sspHeaders() });
      expect(seen.method).toBe('HEAD');
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe('1234');
      expect(r.body.length).toBe(0);
    });

    test.each([204, 304])('%i passes with no body', async (status) => {
      reply = (_req, res) => {
        res.writeHead(status, { ETag: '"v1"' });
        res.end();
      };
      const r = await t.send(gw.url(`${ROOT}/metadata`), { headers: sspHeaders() });
      expect(r.status).toBe(status);
      expect(r.headers.etag).toBe('"v1"');
      expect(r.body.length).toBe(0);
    });

    test("Expect: 100-continue: the provider's 100 reaches the consumer, then the body flows", async () => {
      const body = randomBytes(10_000);
      const head =
        `POST /${ROOT}/metadata HTTP/1.1\r\nHost: gw\r\n${Object.entries(sspHeaders())
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n')}\r\n` + `Content-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
      const text = await new Promise<string>((resolve, reject) => {
        let got = '';
        let sent = false;
        const s = t.connect(gw.proxyPort, () => s.write(head));
        s.on('data', (c) => {
          got += c.toString('latin1');
          if (!sent && got.startsWith('HTTP/1.1 100 Continue')) {
            sent = true;
            s.write(body);
          }
        });
        s.on('error', reject);
        s.on('close', () => resolve(got));
      });
      expect(text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
      expect(seen.bodySha).toBe(sha(body));
    });

    test('Expect: 100-continue on a refused request: a final refusal and no 100', async () => {
      const before = provider.connections;
      const raw = await t.raw(
        gw.proxyPort,
        `POST /${ROOT}/metadata HTTP/1.1\r\nHost: gw\r\n${Object.entries(sspHeaders({ 'Ssp-From': '111111111111' }))
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n')}\r\n` + 'Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n',
      );
      expect(raw).toMatch(/^HTTP\/1\.1 403 /);
      expect(raw).not.toMatch(/100 Continue/);
      expect(raw).toMatch(/\r\nConnection: close\r\n/);
      expect(provider.connections).toBe(before);
    });
  });
}

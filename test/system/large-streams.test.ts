import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { directoryYaml, sspHeaders, startProvider, type TestProvider } from '../helpers/test-kit';
import { measureRssGrowth, runGateway, type ChildGateway } from '../helpers/child-gateway';

/**
 * Large bodies stream through the gateway (run as its own process, so its RSS is
 * its own): SHA-256 at both ends, and the gateway's memory stays flat.
 */
const MiB = 1024 * 1024;
const RSS_BOUND = 32 * MiB; // the benchmark reports the exact figure; this guards against buffering a body

/** A deterministic stream of `total` bytes made from a random block, hashed as it is produced. */
function source(total: number): { stream: Readable; digest: Promise<string> } {
  const block = randomBytes(256 * 1024);
  const hash = createHash('sha256');
  let left = total;
  let resolveDigest!: (d: string) => void;
  const digest = new Promise<string>((r) => (resolveDigest = r));
  const stream = new Readable({
    read() {
      if (left === 0) {
        resolveDigest(hash.digest('hex'));
        this.push(null);
        return;
      }
      const chunk = left >= block.length ? block : block.subarray(0, left);
      left -= chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest };
}

let provider: TestProvider;
let gw: ChildGateway;
let providerReceived: Promise<{ bytes: number; sha: string }>;
let downloadSize = 0;
let expectedDownload: Promise<string>;

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    if (req.method === 'GET') {
      const { stream, digest } = source(downloadSize);
      expectedDownload = digest;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); // chunked: streamed, length unknown
      stream.pipe(res);
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    providerReceived = new Promise((resolve) => {
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        resolve({ bytes, sha: hash.digest('hex') });
        res.writeHead(200, { 'Content-Length': '2' });
        res.end('ok');
      });
    });
  });
  gw = await runGateway(directoryYaml({ metadata: provider.root }));
});
afterAll(async () => {
  gw?.kill('SIGTERM');
  await gw?.exited;
  await provider.close();
});

function download(): Promise<{ bytes: number; sha: string }> {
  return new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
    const req = request(gw.url(`${provider.root}/metadata`), { headers: sspHeaders(), agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      res.on('end', () => resolve({ bytes, sha: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test("a 200 MiB streamed response arrives intact, with the gateway's RSS flat", async () => {
  // The first large transfer grows the heap once (~35 MiB: V8 lets freed socket buffers pile
  // up to its external-memory GC threshold); warm up so the bound measures per-stream growth.
  downloadSize = 20 * MiB;
  await download();
  downloadSize = 200 * MiB;
  const { result, peakGrowth } = await measureRssGrowth(gw, download);
  expect(result.bytes).toBe(200 * MiB);
  expect(result.sha).toBe(await expectedDownload);
  process.stdout.write(`200 MiB download: gateway RSS growth ${(peakGrowth / MiB).toFixed(1)} MiB\n`);
  expect(peakGrowth).toBeLessThan(RSS_BOUND);
}, 120000);

test("a 50 MiB streamed upload arrives intact, with the gateway's RSS flat", async () => {
  const { stream, digest } = source(50 * MiB);
  const { result, peakGrowth } = await measureRssGrowth(
    gw,
    () =>
      new Promise<number>((resolve, reject) => {
        const req = request(gw.url(`${provider.root}/metadata`), { method: 'POST', headers: sspHeaders(), agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        stream.pipe(req);
      }),
  );
  expect(result).toBe(200);
  const received = await providerReceived;
  expect(received.bytes).toBe(50 * MiB);
  expect(received.sha).toBe(await digest);
  process.stdout.write(`50 MiB upload: gateway RSS growth ${(peakGrowth / MiB).toFixed(1)} MiB\n`);
  expect(peakGrowth).toBeLessThan(RSS_BOUND);
}, 120000);

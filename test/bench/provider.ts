import { createServer } from 'node:http';

/** Bench provider: 2 KiB FHIR-ish bodies, and /big streaming BIG_BYTES (default 100 MiB). */
const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', pad: 'x'.repeat(2048 - 52) }));
const block = Buffer.alloc(256 * 1024, 0x5a);
const bigBytes = Number(process.env.BIG_BYTES ?? 100 * 1024 * 1024);

const server = createServer((req, res) => {
  if (req.url!.endsWith('/big')) {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bigBytes) });
    let left = bigBytes;
    const pump = () => {
      while (left > 0) {
        const chunk = left >= block.length ? block : block.subarray(0, left);
        left -= chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  req.resume();
  res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': String(body.length), 'Cache-Control': 'no-store' });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});

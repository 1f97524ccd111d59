import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

/**
 * Bench provider: 2 KiB FHIR-ish bodies, and /big or /metadata?big streaming BIG_BYTES (default
 * 100 MiB). The gateway is benched with `metadata?big`: a form the read:metadata-1 interaction
 * allows (its template has no query), so the default INTERACTION_CHECK=enforce passes it.
 */
const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', pad: 'x'.repeat(2048 - 52) }));
const block = Buffer.alloc(256 * 1024, 0x5a);
const bigBytes = Number(process.env.BIG_BYTES ?? 100 * 1024 * 1024);

const handler: RequestListener = (req, res) => {
  if (req.url!.endsWith('/big') || req.url!.endsWith('/metadata?big')) {
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
};
// With TLS_CERT and TLS_KEY it speaks TLS; with TLS_CA too it requires a client certificate (as providers behind Spine do).
const server = process.env.TLS_CERT
  ? createHttpsServer(
      {
        cert: readFileSync(process.env.TLS_CERT),
        key: readFileSync(process.env.TLS_KEY!),
        ...(process.env.TLS_CA ? { ca: readFileSync(process.env.TLS_CA), requestCert: true, rejectUnauthorized: true } : {}),
      },
      handler,
    )
  : createHttpServer(handler);
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});

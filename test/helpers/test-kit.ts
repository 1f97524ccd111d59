import { createServer, request as httpRequest, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGateway, type Gateway } from '../../src/app';
import type { AuditPipelineOptions } from '../../src/app-audit';
import { loadSettings } from '../../src/config';
import { createLogger } from '../../src/log';

export const REPO = join(__dirname, '..', '..');
export const FIXTURES = join(REPO, 'test', 'fixtures', 'gpconnect');

export const CONSUMER_ASID = '200000000359';
export const PROVIDER_ASID = '918999198993';
export const METADATA = 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1';
export const STRUCTURED = 'urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1';
export const TRACE_ID = '629ea9ba-a077-4d99-b289-7a9b19fd4e03';

/** A real provider on 127.0.0.1:0 that counts every TCP connection made to it. */
export interface TestProvider {
  readonly port: number;
  readonly server: Server;
  connections: number;
  requests: IncomingMessage[];
  /** The service root registered for it in the test directory. */
  readonly root: string;
  close(): Promise<void>;
}

/**
 * `tls`: the provider speaks TLS with this certificate and, given `ca`, requires a client
 * certificate that chains to it (as providers behind Spine accept only the SSP).
 */
export async function startProvider(
  handler: RequestListener,
  path = '/A20047/STU3/1/gpconnect/fhir',
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer },
): Promise<TestProvider> {
  const sockets = new Set<Socket>();
  const provider = { connections: 0, requests: [] as IncomingMessage[] } as TestProvider & { connections: number };
  const listener: RequestListener = (req, res) => {
    provider.requests.push(req);
    handler(req, res);
  };
  const server: Server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}) }, listener)
    : createServer(listener);
  server.on('connection', (socket) => {
    provider.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(provider, {
    port,
    server,
    root: `${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
}

/** A directory with one consumer and one provider whose endpoints are `roots`. */
export function directoryYaml(roots: { metadata: string; structured?: string }, extra = ''): string {
  return `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${METADATA}, ${STRUCTURED}]
  - asid: "200000000360"
    ods: "NOAGREE"
    interactions: [${METADATA}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${roots.metadata}
        interactions: [${METADATA}]
${roots.structured ? `      - url: ${roots.structured}\n        interactions: [${STRUCTURED}]\n` : ''}agreements:
  - id: NDSA
    consumers: ["FA565"]
    providers: "*"
${extra}`;
}

/**
 * A TCP port free on 127.0.0.1 at this moment: for a child process that must be told its
 * port up front, or as a port where nothing listens (connections to it are refused).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'gw-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** An ADMIN_TOKENS_FILE holding these tokens, each stored as the gateway wants it: its SHA-256. */
export function adminTokensFile(tokens: ReadonlyArray<{ name: string; role: string; token: string }>): string {
  const file = join(tempDir('tokens-'), 'admin-tokens.yaml');
  writeFileSync(file, tokens.map((t) => `- { name: ${t.name}, role: ${t.role}, sha256: ${createHash('sha256').update(t.token).digest('hex')} }\n`).join(''));
  return file;
}

export interface RunningGateway {
  gateway: Gateway;
  proxyPort: number;
  adminPort: number;
  dir: string;
  directoryFile: string;
  logFile: string;
  /** http://127.0.0.1:<proxyPort>/ followed by the target. */
  url(target: string): string;
  stop(): Promise<void>;
}

/**
 * An in-process gateway on ephemeral ports with its own directory file and log file.
 * Audit is off unless `env` turns it on: the embedded engine allows one open data
 * directory per process, and several of these gateways run at once in some tests.
 * `options.store: 'inline'` runs the audit store in this process (the test seam), for
 * tests that need its AuditStore object (gateway.audit.store); otherwise it is a child process.
 */
export async function startGateway(directory: string, env: Record<string, string> = {}, options: AuditPipelineOptions = {}): Promise<RunningGateway> {
  const dir = tempDir();
  const directoryFile = join(dir, 'directory.yaml');
  const logFile = join(dir, 'gateway.log');
  writeFileSync(directoryFile, directory);
  const settings = loadSettings({
    PORT: '0',
    ADMIN_PORT: '0',
    DIRECTORY_FILE: directoryFile,
    INTERACTIONS_FILE: join(REPO, 'config', 'gpconnect-interactions.json'),
    DATA_DIR: join(dir, 'data'),
    AUDIT_ENABLED: 'false',
    // Other features' suites send any path under one interaction; the interaction check's own suite turns it on.
    INTERACTION_CHECK: 'off',
    ...env,
  });
  const gateway = await buildGateway(settings, createLogger(settings.LOG_LEVEL, logFile), options);
  const { proxyPort, adminPort } = await gateway.listen();
  return {
    gateway,
    proxyPort,
    adminPort,
    dir,
    directoryFile,
    logFile,
    url: (target) => `${settings.TLS_CERT_FILE ? 'https' : 'http'}://127.0.0.1:${proxyPort}/${target}`,
    stop: () => gateway.shutdown(),
  };
}

export function sspHeaders(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    'Ssp-TraceID': TRACE_ID,
    'Ssp-From': CONSUMER_ASID,
    'Ssp-To': PROVIDER_ASID,
    'Ssp-InteractionID': METADATA,
    Authorization: 'Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.',
    ...overrides,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[k] = v;
  return out;
}

/** Sends raw bytes on a fresh connection and resolves with everything read until the peer closes (or `waitMs`). */
export function rawExchange(port: number, bytes: string | Buffer, waitMs = 2000, tls?: ClientTls): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }, () => socket.write(bytes)) : connect(port, '127.0.0.1', () => socket.write(bytes));
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

export interface Reply {
  status: number;
  statusMessage: string;
  rawHeaders: string[];
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** What a TLS client presents and trusts: the CA to verify the server, and its own certificate and key. */
export interface ClientTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** One request through node:http (node:https for an https URL, with `tls`) on a fresh connection; collects the whole reply. */
export function send(
  url: string,
  options: { method?: string; headers?: Record<string, string> | string[]; body?: Buffer | string; tls?: ClientTls } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false, ...options.tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          rawHeaders: res.rawHeaders,
          headers: res.headers,
          body: Buffer.concat(chunks),
        }),
      );
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Starts a download and walks away (destroys the request) once more than `bytes` have arrived: a consumer gone mid-download. */
export function abandonAfter(url: string, headers: Record<string, string>, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      let received = 0;
      res.on('data', (c: Buffer) => {
        received += c.length;
        if (received > bytes) {
          req.destroy();
          resolve();
        }
      });
    });
    req.on('error', () => {});
    req.end();
  });
}

/** Reads a whole request body. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function okHandler(body = '{"resourceType":"CapabilityStatement"}'): RequestListener {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/fhir+json' });
    res.end(body);
  };
}

/** Waits until `predicate` holds, polling, or fails after `ms`. */
export async function eventually(predicate: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Waits until `predicate` (which may ask a server) holds, polling every `everyMs`, or fails
 * after `ms` naming `what`. For waits on something the test cannot be told about directly;
 * a fixed sleep in its place is either too short on a loaded machine or wasted time.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, ms = 5000, what = 'condition', everyMs = 25): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

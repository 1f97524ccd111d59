import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CONSUMER_ASID, METADATA, PROVIDER_ASID, readBody, send, sspHeaders, startGateway, type RunningGateway } from '../helpers/test-kit';
import { searchUntil } from '../helpers/audit-kit';
import { TestCa, type Issued } from '../helpers/pki';

/**
 * Transport security as on Spine, with certificates made here: mutual TLS on the consumer
 * leg (chain, dates, CRL, and the certificate's host name bound to the Ssp-From ASID),
 * and on the provider leg (the gateway verifies the provider and presents its own certificate).
 */
const UNTRUSTED_ASID = '918999198994';
const BOUND_HOST = 'pharmacy.example.nhs.uk';
let spine: TestCa;
let rogue: TestCa;
let good: Issued;
let otherHost: Issued;
let toRevokeLater: Issued;
let crlFile: string;
let provider: Server;
let untrusted: Server;
let gw: RunningGateway;
const seenByProvider: Array<{ clientCn: string; body: string; headers: string[] }> = [];

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  spine = TestCa.create('Test Spine CA');
  rogue = TestCa.create('Rogue CA');
  good = spine.issue(BOUND_HOST, { dns: [BOUND_HOST] });
  otherHost = spine.issue('care-home.example.nhs.uk', { dns: ['care-home.example.nhs.uk'] });
  toRevokeLater = spine.issue(BOUND_HOST, { dns: [BOUND_HOST] });
  const revoked = spine.issue(BOUND_HOST, { dns: [BOUND_HOST] });
  crlFile = `${spine.dir}/gateway-crl.pem`;
  copyFileSync(spine.revoke(revoked), crlFile);
  revokedCert = revoked;
  const gatewayServer = spine.issue('gateway.test', { usage: 'server', dns: ['localhost'] });
  const gatewayClient = spine.issue('msg.gateway.test', { usage: 'client' });
  const providerCert = spine.issue('gp.example.nhs.uk', { usage: 'server', dns: ['gp.example.nhs.uk'] });
  const rogueProviderCert = rogue.issue('gp.rogue.example', { usage: 'server' });

  // The provider accepts only clients with a Spine certificate, as real providers accept only the SSP.
  provider = createHttpsServer(
    { cert: providerCert.certPem, key: providerCert.keyPem, ca: spine.pem, requestCert: true, rejectUnauthorized: true },
    async (req, res) => {
      const body = await readBody(req);
      seenByProvider.push({
        clientCn: (req.socket as TLSSocket).getPeerCertificate().subject.CN as string,
        body: createHash('sha256').update(body).digest('hex'),
        headers: req.rawHeaders,
      });
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'X-Echo-Length': String(body.length) });
      res.end(body.length > 0 ? body : '{"resourceType":"CapabilityStatement"}');
    },
  );
  untrusted = createHttpsServer({ cert: rogueProviderCert.certPem, key: rogueProviderCert.keyPem }, (_req, res) => res.end('should never be reached'));
  const [providerPort, untrustedPort] = await Promise.all([listen(provider), listen(untrusted)]);
  providerRoot = `https://127.0.0.1:${providerPort}/A20047/STU3/1/gpconnect/fhir`;
  untrustedRoot = `https://127.0.0.1:${untrustedPort}/B00001/STU3/1/gpconnect/fhir`;
  const directory = `consumers:
  - asid: "${CONSUMER_ASID}"
    ods: "FA565"
    interactions: [${METADATA}]
    certificate_fqdns: [${BOUND_HOST.toUpperCase()}]
providers:
  - asid: "${PROVIDER_ASID}"
    ods: "A20047"
    endpoints:
      - url: ${providerRoot}
        interactions: [${METADATA}]
  - asid: "${UNTRUSTED_ASID}"
    ods: "B00001"
    endpoints:
      - url: ${untrustedRoot}
        interactions: [${METADATA}]
`;
  gw = await startGateway(directory, {
    AUDIT_ENABLED: 'true',
    TLS_CERT_FILE: gatewayServer.cert,
    TLS_KEY_FILE: gatewayServer.key,
    TLS_CLIENT_CA_FILE: spine.certFile,
    TLS_CRL_FILE: crlFile,
    UPSTREAM_CA_FILE: spine.certFile,
    UPSTREAM_CERT_FILE: gatewayClient.cert,
    UPSTREAM_KEY_FILE: gatewayClient.key,
  });
}, 60_000);
afterAll(async () => {
  // Set-up may have failed (a program not installed): its one line is the report.
  await gw?.stop();
  provider?.close();
  untrusted?.close();
});

let revokedCert: Issued;
let providerRoot: string;
let untrustedRoot: string;

/** One request to the gateway over TLS, presenting `client` (or no certificate). */
function tlsSend(target: string, client: Issued | null, options: Parameters<typeof send>[1] = {}) {
  return send(gw.url(target), { headers: sspHeaders(), ...options, tls: { ca: spine.pem, cert: client?.certPem, key: client?.keyPem } });
}

describe('consumer leg: mutual TLS', () => {
  test("a good client certificate passes, the provider sees the gateway's own certificate, and bodies pass byte for byte both ways", async () => {
    const body = randomBytes(1024 * 1024 + 17);
    const before = seenByProvider.length;
    const r = await tlsSend(`${providerRoot}/Patient/$gpc.getstructuredrecord`, good, {
      method: 'POST',
      headers: [
        'Host',
        'localhost',
        ...Object.entries(sspHeaders()).flat(),
        'Content-Type',
        'application/fhir+json',
        'X-Case-Kept',
        'One',
        'x-case-kept',
        'two',
      ],
      body,
    });
    expect(r.status).toBe(200);
    expect(r.body.equals(body)).toBe(true);
    const seen = seenByProvider[before];
    expect(seen.clientCn).toBe('msg.gateway.test');
    expect(seen.body).toBe(createHash('sha256').update(body).digest('hex'));
    const names = seen.headers.filter((_, i) => i % 2 === 0);
    expect(names.filter((n) => n.toLowerCase() === 'x-case-kept')).toEqual(['X-Case-Kept', 'x-case-kept']);
  });

  test.each([
    ['no certificate', () => null],
    ['an expired certificate', () => spine.issue(BOUND_HOST, { dns: [BOUND_HOST], validity: { start: '20200101000000Z', end: '20200201000000Z' } })],
    ['a certificate from another CA', () => rogue.issue(BOUND_HOST, { dns: [BOUND_HOST] })],
    ['a revoked certificate (CRL)', () => revokedCert],
  ])('%s never reaches routing: the handshake fails', async (_what, make) => {
    const before = seenByProvider.length;
    await expect(tlsSend(`${providerRoot}/metadata`, make())).rejects.toThrow();
    expect(seenByProvider.length).toBe(before);
  });

  test("a valid certificate whose host name is not registered for Ssp-From gets the real proxy's 403 sender code", async () => {
    const before = seenByProvider.length;
    const r = await tlsSend(`${providerRoot}/metadata`, otherHost);
    expect(r.status).toBe(403);
    const outcome = JSON.parse(r.body.toString());
    expect(outcome.issue[0].details.coding[0].display).toBe(`ASID_CHECK_FAILED_MESSAGESENDER_${CONSUMER_ASID}`);
    expect(outcome.issue[0].diagnostics).toContain('client certificate');
    expect(r.headers['strict-transport-security']).toMatch(/max-age=/);
    expect(seenByProvider.length).toBe(before);
  });

  test('a CRL reloaded without a restart refuses a certificate revoked since start-up', async () => {
    expect((await tlsSend(`${providerRoot}/metadata`, toRevokeLater)).status).toBe(200);
    copyFileSync(spine.revoke(toRevokeLater), crlFile);
    gw.gateway.reloadTls();
    await expect(tlsSend(`${providerRoot}/metadata`, toRevokeLater)).rejects.toThrow();
    expect((await tlsSend(`${providerRoot}/metadata`, good)).status).toBe(200);
  });

  test('the audit record carries the client certificate and the TLS protocol and cipher', async () => {
    const rows = await searchUntil(gw.adminPort, `consumer_asid=${CONSUMER_ASID}&outcome=forwarded`, (rs) => rs.length > 0);
    const goodSha = createHash('sha256')
      .update(Buffer.from(good.certPem.toString().replace(/-----[^-]+-----|\s/g, ''), 'base64'))
      .digest('hex');
    const row = rows.find((x) => String(x.client_cert_sha256).replace(/:/g, '').toLowerCase() === goodSha)!;
    expect(row).toBeDefined();
    expect(row.client_cert_subject).toBe(`CN=${BOUND_HOST}`);
    expect(row.client_cert_issuer).toBe('CN=Test Spine CA');
    expect(String(row.client_cert_serial)).toMatch(/^[0-9A-F]+$/);
    expect(row.tls_protocol).toMatch(/^TLSv1\.[23]$/);
    expect(String(row.tls_cipher)).toMatch(/^TLS_/);
  });
});

describe('provider leg', () => {
  test("a provider whose certificate does not verify gets a 502 with the real proxy's code, and the audit record says why", async () => {
    const r = await tlsSend(`${untrustedRoot}/metadata`, good, { headers: sspHeaders({ 'Ssp-To': UNTRUSTED_ASID }) });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body.toString()).issue[0].details.coding[0].display).toBe(`ERROR_COMMUNICATING_TO_ENDPOINT_URL_${untrustedRoot}/metadata`);
    const rows = await searchUntil(gw.adminPort, `provider_asid=${UNTRUSTED_ASID}`, (rs) => rs.length === 1);
    expect(rows[0]).toMatchObject({ outcome: 'upstream_error', status: 502 });
    expect(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']).toContain(rows[0].failure_reason);
  });
});

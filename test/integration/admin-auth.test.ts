import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  directoryYaml,
  okHandler,
  send,
  sspHeaders,
  startGateway,
  startProvider,
  tempDir,
  waitFor,
  type RunningGateway,
  type TestProvider,
  adminTokensFile,
} from '../helpers/test-kit';
import { getText } from '../helpers/metrics-kit';
import { AdminTokens } from '../../src/admin';

const sha = (token: string) => createHash('sha256').update(token).digest('hex');
const METRICS_TOKEN = 'scrape-9f1c0d2e7a';
const AUDITOR_TOKEN = 'alice-5b7e22c4d1';

function tokensFile(): string {
  return adminTokensFile([
    { name: 'prometheus', role: 'metrics', token: METRICS_TOKEN },
    { name: 'alice', role: 'auditor', token: AUDITOR_TOKEN },
  ]);
}
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

let provider: TestProvider;
beforeAll(async () => {
  provider = await startProvider(okHandler());
});
afterAll(() => provider.close());

describe('admin port with ADMIN_TOKENS_FILE', () => {
  let gw: RunningGateway;
  let admin: string;
  beforeAll(async () => {
    gw = await startGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', ADMIN_TOKENS_FILE: tokensFile() });
    admin = `http://127.0.0.1:${gw.adminPort}`;
  });
  afterAll(() => gw.stop());

  test('/healthz and /readyz stay open', async () => {
    expect((await getText(`${admin}/healthz`)).status).toBe(200);
    expect((await getText(`${admin}/readyz`)).status).toBe(200);
  });

  test('/metrics: no or unknown token 401, a metrics or auditor token gets the data', async () => {
    const none = await send(`${admin}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="spine-gateway-admin"');
    expect((await getText(`${admin}/metrics`, bearer('not-a-token'))).status).toBe(401);
    expect((await getText(`${admin}/metrics`, { Authorization: sha(METRICS_TOKEN) })).status).toBe(401); // the digest is not the token
    for (const token of [METRICS_TOKEN, AUDITOR_TOKEN]) {
      const ok = await getText(`${admin}/metrics`, bearer(token));
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('spine_gateway_requests_total');
    }
  });

  test('/audit/transactions: no token 401, the metrics role 403, an auditor gets data, and the search is logged with who asked', async () => {
    expect((await send(gw.url(`${provider.root}/metadata`), { headers: sspHeaders() })).status).toBe(200);
    const url = `${admin}/audit/transactions?consumer_asid=200000000359&limit=5`;
    expect((await getText(url)).status).toBe(401);
    const forbidden = await getText(url, bearer(METRICS_TOKEN));
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.text).message).toContain('auditor');
    let rows: unknown[] = [];
    async function search(): Promise<void> {
      const ok = await getText(url, bearer(AUDITOR_TOKEN));
      if (ok.status === 503) return; // the store is still being prepared: not yet searchable
      expect(ok.status).toBe(200);
      rows = JSON.parse(ok.text).transactions;
    }
    for (const until = Date.now() + 10_000; rows.length === 0 && Date.now() < until; await new Promise((r) => setTimeout(r, 100))) await search();
    expect(rows.length).toBe(1);
    const searchLines = () => {
      gw.gateway.log.flush();
      return readFileSync(gw.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"audit access"'))
        .map((l) => JSON.parse(l))
        .filter((l) => l.status === 200);
    };
    await waitFor(() => searchLines().length > 0, 5000, 'the audit access log line');
    const lines = searchLines();
    expect(lines[lines.length - 1]).toMatchObject({ who: 'alice', role: 'auditor', action: 'search', filters: { consumer_asid: '200000000359', limit: 5 } });
    expect(readFileSync(gw.logFile, 'utf8')).not.toContain(AUDITOR_TOKEN);
  });
});

describe('settings', () => {
  test('ADMIN_METRICS_OPEN lets a trusted network scrape without a token', async () => {
    const gw = await startGateway(directoryYaml({ metadata: provider.root }), { ADMIN_TOKENS_FILE: tokensFile(), ADMIN_METRICS_OPEN: 'true' });
    try {
      expect((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });

  test('a tokens file holding a token in clear (not its SHA-256) stops start-up with one clear line', () => {
    const file = join(tempDir('tokens-'), 'bad.yaml');
    writeFileSync(file, `- { name: bob, role: auditor, sha256: ${AUDITOR_TOKEN} }\n`);
    expect(() => AdminTokens.load(file)).toThrow(/ADMIN_TOKENS_FILE .*entry 0\.sha256: the SHA-256 of the token/);
    writeFileSync(file, `- { name: bob, role: admin, sha256: ${sha('x')} }\n`);
    expect(() => AdminTokens.load(file)).toThrow(/ADMIN_TOKENS_FILE .*entry 0\.role/);
  });
});

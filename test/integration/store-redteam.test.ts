import {
  adminTokensFile,
  directoryYaml,
  okHandler,
  rawExchange,
  startGateway,
  startProvider,
  waitFor,
  type RunningGateway,
  type TestProvider,
} from '../helpers/test-kit';
import { getText } from '../helpers/metrics-kit';

/**
 * Red team of the admin port's way to the audit store process (README: How the admin port
 * reaches the audit store), with raw bytes over real sockets: the gateway's admin port, the
 * store process and its Unix socket, as `npm start` runs them.
 */
const AUDITOR_TOKEN = 'carol-6c1f0a9e3b';
let provider: TestProvider;
let gw: RunningGateway;

beforeAll(async () => {
  provider = await startProvider(okHandler());
  const tokens = adminTokensFile([{ name: 'carol', role: 'auditor', token: AUDITOR_TOKEN }]);
  gw = await startGateway(directoryYaml({ metadata: provider.root }), { AUDIT_ENABLED: 'true', ADMIN_TOKENS_FILE: tokens, AUDIT_BATCH_MAX_AGE_MS: '50' });
  const admin = `http://127.0.0.1:${gw.adminPort}`;
  await waitFor(
    async () => (await getText(`${admin}/audit/transactions?limit=1`, { Authorization: `Bearer ${AUDITOR_TOKEN}` })).status === 200,
    20_000,
    'the store answers',
  );
}, 30_000);
afterAll(async () => {
  await gw.stop();
  await provider.close();
});

const AUDIT_PATH = '/audit/transactions?limit=1';
const statusOf = (out: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1]);

test.each([16_100, 16_200, 16_260, 16_280, 16_300])(
  'a header block the admin port takes (%i bytes of padding) reaches the store’s app, never a bare 431 from its socket',
  async (pad) => {
    const head = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${AUDITOR_TOKEN}\r\nX-Pad: ${'a'.repeat(pad)}\r\nConnection: close\r\n\r\n`;
    // The same header block (request line of the same length) on a route of the admin port's own: does the admin port take it?
    const own = statusOf(await rawExchange(gw.adminPort, head(`/healthz?${'x'.repeat(AUDIT_PATH.length - '/healthz?'.length)}`), 5000));
    const audit = statusOf(await rawExchange(gw.adminPort, head(AUDIT_PATH), 5000));
    // Taken by the admin port: answered by the store's app (which logs the access), not refused by its socket's parser.
    expect([pad, audit]).toEqual([pad, own === 431 ? 431 : 200]);
  },
);

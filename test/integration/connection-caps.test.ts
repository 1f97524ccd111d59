import { directoryYaml, eventually, send, startGateway, startProvider, waitFor, type RunningGateway, type TestProvider } from '../helpers/test-kit';
import { getText, parseExposition } from '../helpers/metrics-kit';
import { RawConnection, sspLines, statusLines } from '../helpers/raw-conn';
import { defaultMaxConnections, openFilesLimit, DESCRIPTOR_RESERVE } from '../../src/gateway';
import { readFileSync } from 'node:fs';

/** MAX_CONNECTIONS and MAX_CONNECTION_AGE_MS on the proxy port. */
let provider: TestProvider;

beforeAll(async () => {
  provider = await startProvider((req, res) => {
    req.resume();
    const slow = (req.url ?? '').includes('/slow');
    setTimeout(
      () => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
        res.end('ok');
      },
      slow ? 900 : 0,
    );
  });
});
afterAll(() => provider.close());

const request = (root: string, path: string, extra = '') => `GET /${root}${path} HTTP/1.1\r\nHost: gw\r\n${sspLines().lines}${extra}\r\n`;

describe('MAX_CONNECTIONS', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway(directoryYaml({ metadata: provider.root }), { MAX_CONNECTIONS: '5' });
  });
  afterAll(() => gw.stop());

  test('over the cap, new connections are closed at once and counted; /healthz still answers', async () => {
    const idle: RawConnection[] = [];
    for (let i = 0; i < 12; i++) {
      const c = new RawConnection(gw.proxyPort);
      idle.push(c);
      await c.whenOpen.catch(() => {});
      await new Promise((r) => setTimeout(r, 10)); // the server sees them in order
    }
    await eventually(() => idle.filter((c) => c.closed).length >= 7, 3000, 'over-cap connections closed');
    expect(idle.slice(0, 5).every((c) => !c.closed)).toBe(true);
    expect(idle.filter((c) => c.closed)).toHaveLength(7);
    const health = await send(`http://127.0.0.1:${gw.adminPort}/healthz`);
    expect(health.status).toBe(200);
    const metrics = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
    expect(metrics.get('spine_gateway_connections_rejected_total')).toBe(7);
    // Under the cap again, the port serves.
    for (const c of idle) c.destroy();
    // Once the gateway has seen those closes (a connection tried before then is closed unanswered).
    let answer = '';
    await waitFor(
      async () => {
        const conn = new RawConnection(gw.proxyPort);
        conn.write(request(provider.root, '/metadata', 'Connection: close\r\n'));
        await conn.closes(3000);
        answer = conn.text();
        return answer !== '';
      },
      5000,
      'a connection under the cap to be answered',
    );
    expect(statusLines(answer)).toEqual(['HTTP/1.1 200 OK\r\n']);
  });

  test('the chosen cap is logged at start-up', () => {
    const line = readFileSync(gw.logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('proxy port connection cap'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ maxConnections: 5, fromSetting: true });
  });
});

describe('default MAX_CONNECTIONS from the descriptor limit', () => {
  const limits = (soft: string) =>
    `Limit                     Soft Limit           Hard Limit           Units     \nMax processes             63704                63704                processes \nMax open files            ${soft}                 1048576              files     \n`;
  test('half of the soft limit left after the reserve', () => {
    expect(openFilesLimit(limits('1500'))).toBe(1500);
    expect(defaultMaxConnections(1500)).toBe(Math.floor((1500 - DESCRIPTOR_RESERVE) / 2));
    expect(defaultMaxConnections(1024)).toBe(448);
    expect(defaultMaxConnections(100)).toBe(1);
  });
  test('unlimited or unreadable: no cap (the log says to set MAX_CONNECTIONS)', () => {
    expect(openFilesLimit(limits('unlimited'))).toBeNull();
    expect(openFilesLimit(null)).toBeNull();
    expect(defaultMaxConnections(null)).toBeNull();
  });
  test('this process: read from /proc/self/limits', () => {
    expect(openFilesLimit()).toBeGreaterThan(0);
  });
  test('a gateway without MAX_CONNECTIONS logs the cap it chose', async () => {
    const gw = await startGateway(directoryYaml({ metadata: provider.root }));
    try {
      const line = readFileSync(gw.logFile, 'utf8')
        .split('\n')
        .find((l) => l.includes('proxy port connection cap'));
      expect(JSON.parse(line!)).toMatchObject({ maxConnections: defaultMaxConnections(openFilesLimit()), fromSetting: false });
    } finally {
      await gw.stop();
    }
  });
});

describe('MAX_CONNECTION_AGE_MS', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway(directoryYaml({ metadata: provider.root }), { MAX_CONNECTION_AGE_MS: '700' });
  });
  afterAll(() => gw.stop());

  test('an idle keep-alive connection older than the limit is closed', async () => {
    const conn = new RawConnection(gw.proxyPort);
    conn.write(request(provider.root, '/metadata'));
    await conn.until((t) => t.endsWith('ok'));
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
    // Node's own keep-alive timeout is 5 s: a close well before that is the age limit.
    expect(await conn.closes(2000)).toBe(true);
    const metrics = parseExposition((await getText(`http://127.0.0.1:${gw.adminPort}/metrics`)).text);
    expect(metrics.get('spine_gateway_connections_retired_total{reason="max_age"}')).toBeGreaterThanOrEqual(1);
  });

  test('a busy connection finishes its response first, then closes', async () => {
    const conn = new RawConnection(gw.proxyPort);
    conn.write(request(provider.root, '/slow'));
    await conn.until((t) => t.endsWith('ok'), 3000);
    expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200 OK\r\n']);
    expect(conn.text().endsWith('\r\n\r\nok')).toBe(true);
    expect(await conn.closes(1000)).toBe(true);
  });
});

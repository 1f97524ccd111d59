import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdminClient } from '../../../src/cli/admin-client';
import { resolveTarget } from '../../../src/cli/admin-target';
import { CliError, EXIT } from '../../../src/cli/cli-errors';
import { optionName } from '../../../src/cli/filters';
import { freePort } from '../../helpers/test-kit';

/** A real HTTP server on 127.0.0.1 answering as `handler` says, keeping what it was sent. */
let server: Server;
let base: string;
let handler: (req: IncomingMessage, res: ServerResponse) => void;
const seen: IncomingMessage[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const json = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};

async function failure(promise: Promise<unknown>): Promise<CliError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error('did not fail');
}

const client = (token: string | null = 'tok-123') => new AdminClient(resolveTarget({ adminUrl: `${base}/`, ...(token ? { token } : {}) }, {}), optionName);

describe('the admin API client', () => {
  test('sends the token as a bearer token, the path under the base, and parses the JSON', async () => {
    handler = json(200, { transactions: [], next_cursor: null });
    expect(await client().getJson('/audit/transactions', new URLSearchParams({ consumer_asid: '1' }))).toEqual({ transactions: [], next_cursor: null });
    const req = seen[seen.length - 1];
    expect(req.url).toBe('/audit/transactions?consumer_asid=1');
    expect(req.headers.authorization).toBe('Bearer tok-123');
  });

  test("the API's 400: exit 2, the option's name, and what the filter at fault takes (the whole list when no filter is named)", async () => {
    const valid = { group_by: 'consumer_asid, hour, day', from: 'ISO 8601' };
    handler = json(400, { error: 'invalid filter', filter: 'group_by', message: 'must be one or two dimensions', valid });
    const e = await failure(client().getJson('/audit/summary', new URLSearchParams()));
    expect(e.exitStatus).toBe(EXIT.USAGE);
    expect(e.message).toBe('--group-by: must be one or two dimensions');
    expect(e.details).toEqual(['valid: consumer_asid, hour, day']);
    handler = json(400, { error: 'invalid filter', filter: 'from', message: 'must be ISO 8601', valid });
    expect((await failure(client().getJson('/audit/summary', new URLSearchParams()))).details).toEqual([]); // the message says it already
    handler = json(400, { error: 'invalid request', message: 'only SELECT', valid });
    const whole = await failure(client().postJson('/audit/sql', { sql: 'x' }));
    expect(whole.message).toBe('invalid request: only SELECT');
    expect(whole.details).toEqual(['valid:', '  --group-by  consumer_asid, hour, day', '  --from      ISO 8601']);
  });

  test('503 from the audit store: exit 4 with its message; another 5xx: 4', async () => {
    handler = json(503, { error: 'audit store unavailable', message: 'the audit store did not answer; try again shortly' });
    const e = await failure(client().getJson('/audit/verify', new URLSearchParams()));
    expect([e.exitStatus, e.message]).toEqual([
      EXIT.FAILED,
      "the gateway's audit store did not answer (503): the audit store did not answer; try again shortly",
    ]);
    handler = json(500, { error: 'internal', message: 'x' });
    expect((await failure(client().getJson('/audit/verify', new URLSearchParams()))).exitStatus).toBe(EXIT.FAILED);
  });

  test("an answer that is not the admin API's: exit 3 (wrong port) or 4 (200 but not JSON)", async () => {
    handler = (_req, res) => {
      res.writeHead(400, { 'Content-Type': 'application/fhir+json' });
      res.end('{"resourceType":"OperationOutcome"}');
    };
    expect((await failure(client().getJson('/audit/transactions', new URLSearchParams()))).exitStatus).toBe(EXIT.UNREACHABLE);
    handler = (_req, res) => res.end('<html>');
    expect((await failure(client().getJson('/audit/transactions', new URLSearchParams()))).message).toMatch(/is not JSON/);
  });

  test('server text with control characters is shown on one line without them', async () => {
    handler = json(403, { error: 'forbidden', message: 'no\x1b[31m\nway' });
    const e = await failure(client().getJson('/audit/transactions', new URLSearchParams()));
    expect(e.message).toBe(`the gateway at ${base} refused the token (403): no [31m way`);
  });

  test('a connection refused: exit 3; an answer cut off mid-body: 4', async () => {
    const port = await freePort();
    const refused = new AdminClient(resolveTarget({ adminUrl: `http://127.0.0.1:${port}` }, {}));
    expect((await failure(refused.getJson('/audit/transactions', new URLSearchParams()))).exitStatus).toBe(EXIT.UNREACHABLE);
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"transactions":[');
      setTimeout(() => res.destroy(), 20);
    };
    const cut = await failure(client().getJson('/audit/transactions', new URLSearchParams()));
    expect(cut.exitStatus).toBe(EXIT.FAILED);
    expect(cut.message).toMatch(/broke off/);
  });
});

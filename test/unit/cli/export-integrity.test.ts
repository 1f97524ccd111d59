import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { main } from '../../../src/cli/spine-gateway';
import { tempDir } from '../../helpers/test-kit';

/**
 * What `audit export --output FILE` keeps when the export that arrives is not whole: a
 * real HTTP server on 127.0.0.1 plays the admin API and sends a good export, one without
 * its manifest line, one whose content does not match the manifest's sha256, and one cut off.
 */
let server: Server;
let answer: (res: ServerResponse) => void;
beforeAll(async () => {
  server = createServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const ROWS = '{"event_id":"a"}\n{"event_id":"b"}\n';
const manifest = (sha256: string) => `${JSON.stringify({ export: { format: 'ndjson', rows: 2, truncated: false, sha256 } })}\n`;

async function exportTo(file: string): Promise<{ status: number; stderr: string }> {
  let stderr = '';
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    const port = (server.address() as AddressInfo).port;
    await main(['node', 'spine-gateway', 'audit', 'export', '--admin-url', `http://127.0.0.1:${port}`, '--output', file, '--no-progress']);
    return { status: Number(process.exitCode ?? 0), stderr };
  } finally {
    err.mockRestore();
    process.exitCode = undefined;
  }
}

describe('export integrity', () => {
  test('a whole export: kept under its name, the sha256 checked', async () => {
    answer = (res) => res.end(ROWS + manifest(createHash('sha256').update(ROWS).digest('hex')));
    const dir = tempDir('cli-export-');
    const r = await exportTo(join(dir, 'case.ndjson'));
    expect(r).toEqual({ status: 0, stderr: expect.stringMatching(/^Exported 2 rows to .*case\.ndjson in .*, sha256 matches the manifest\n$/) });
    expect(readFileSync(join(dir, 'case.ndjson'), 'utf8')).toBe(ROWS + manifest(createHash('sha256').update(ROWS).digest('hex')));
    expect(readdirSync(dir)).toEqual(['case.ndjson']);
  });

  test.each([
    ['without its manifest line', (res: ServerResponse) => res.end(ROWS), /ended without its manifest line/],
    ['whose content does not match the manifest', (res: ServerResponse) => res.end(ROWS + manifest('0'.repeat(64))), /does not match its manifest's sha256/],
    [
      'cut off midway',
      (res: ServerResponse) => {
        res.writeHead(200, { 'Content-Length': '1000' });
        res.write(ROWS);
        setTimeout(() => res.destroy(), 20);
      },
      /stopped after 2 lines/,
    ],
  ])('an export %s: exit 4, and no file is left, partial or not', async (_what, send, message) => {
    answer = send;
    const dir = tempDir('cli-export-');
    const r = await exportTo(join(dir, 'case.ndjson'));
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/nothing was kept\n$/);
    expect(existsSync(join(dir, 'case.ndjson'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});

import { join } from 'node:path';
import { AuditStore, AuditStoreError, StoreConfigError, classifyStoreError } from '../../../src/clickhouse';
import { ConfigError, loadSettings } from '../../../src/config';
import { DirectoryError, loadDirectory } from '../../../src/directory';
import { GatewayError } from '../../../src/errors';
import { SpoolClosedError, SpoolFullError, SpoolTimeoutError, SpoolUnavailableError, SpoolWriter } from '../../../src/spool';
import { tempDir } from '../../helpers/test-kit';

/** The gateway's own errors share one base with a stable code (matched on by callers and logs, never the message). */
describe('GatewayError', () => {
  test('spool, store, config and directory errors are GatewayErrors with stable codes and their own names', () => {
    const cases: Array<[GatewayError, string, string]> = [
      [new SpoolFullError(1), 'GW_ERR_SPOOL_FULL', 'SpoolFullError'],
      [new SpoolTimeoutError(1, true), 'GW_ERR_SPOOL_TIMEOUT', 'SpoolTimeoutError'],
      [new SpoolUnavailableError('ENOSPC', false), 'GW_ERR_SPOOL_UNAVAILABLE', 'SpoolUnavailableError'],
      [new SpoolClosedError(), 'GW_ERR_SPOOL_CLOSED', 'SpoolClosedError'],
      [new ConfigError('x'), 'GW_ERR_CONFIG', 'ConfigError'],
      [new DirectoryError('x'), 'GW_ERR_DIRECTORY', 'DirectoryError'],
      [new StoreConfigError('x'), 'GW_ERR_STORE_CONFIG', 'StoreConfigError'],
      [classifyStoreError(Object.assign(new Error('Table x does not exist'), { code: '60' })), '60', 'AuditStoreError'],
    ];
    for (const [error, code, name] of cases) {
      expect({ name: error.name, code: error.code, base: error instanceof GatewayError, error: error instanceof Error }).toEqual({
        name,
        code,
        base: true,
        error: true,
      });
    }
    expect(classifyStoreError(new Error('x'))).toBeInstanceOf(AuditStoreError);
  });

  test('a record offered to a closed spool is refused with SpoolClosedError', async () => {
    const writer = await SpoolWriter.open({ dir: tempDir('closed-'), segmentBytes: 4096, maxBytes: 1 << 20 }, 1, 0, 0);
    await writer.close();
    await expect(writer.append('{"event_id":"x"}')).rejects.toMatchObject({ code: 'GW_ERR_SPOOL_CLOSED', name: 'SpoolClosedError' });
    const told = await new Promise<Error | undefined>((resolve) => writer.appendWritten('{"event_id":"x"}', resolve));
    expect(told).toBeInstanceOf(SpoolClosedError);
  });

  test('a database name that is not a plain identifier: StoreConfigError, before any connection', () => {
    expect(
      () => new AuditStore({ url: 'http://127.0.0.1:1/bad-name', dataDir: tempDir('store-'), manageSchema: false, retentionDays: 30, timeoutMs: 100 }),
    ).toThrow(expect.objectContaining({ code: 'GW_ERR_STORE_CONFIG', name: 'StoreConfigError' }));
  });

  test('a bad setting and a missing directory file: ConfigError and DirectoryError', () => {
    expect(() => loadSettings({ DIRECTORY_FILE: 'x', AUDIT_SEGMENT_BYTES: '1' })).toThrow(expect.objectContaining({ code: 'GW_ERR_CONFIG' }));
    expect(() => loadDirectory(join(tempDir('dir-'), 'missing.yaml'), new Set())).toThrow(expect.objectContaining({ code: 'GW_ERR_DIRECTORY' }));
  });
});

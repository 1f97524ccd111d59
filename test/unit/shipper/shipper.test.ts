import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditStore } from '../../../src/clickhouse';
import { Shipper, type ShipperEvents, type ShipperFileWork } from '../../../src/shipper';
import { SpoolQueue, SpoolWriter } from '../../../src/spool';
import { eventually, tempDir } from '../../helpers/test-kit';

/**
 * The shipper on the real embedded ClickHouse. A spool the disk will not let it read is a
 * disk problem: it is reported as one, and it must not stop the store being prepared, nor
 * be reported as a store failure (that is what sets spine_gateway_clickhouse_up to 0).
 */
test('a spool that cannot be read: the store is still prepared, and no store failure is reported', async () => {
  const dir = tempDir('shipper-');
  const writer = await SpoolWriter.open({ dir: join(dir, 'spool'), segmentBytes: 4096, maxBytes: 1 << 20 }, 1, 0, 0);
  // A file where the spool folder should be: listing it fails with ENOTDIR, every time.
  const notAFolder = join(dir, 'not-a-folder');
  writeFileSync(notAFolder, '');
  const store = new AuditStore({ url: undefined, dataDir: dir, manageSchema: true, retentionDays: 30, timeoutMs: 5000 });
  const seen = { ready: 0, failed: 0, faults: [] as Array<[ShipperFileWork, string | undefined]> };
  const events: ShipperEvents = {
    ready: () => seen.ready++,
    shipped: () => {},
    failed: () => seen.failed++,
    deadLettered: () => {},
    skippedBadBytes: () => {},
    fileFault: (kind, error) => seen.faults.push([kind, error.code]),
    fileRecovered: () => {},
  };
  const shipper = new Shipper(
    { deadLetterDir: join(dir, 'dead-letter'), batchMaxRecords: 100, batchMaxAgeMs: 50, minBackoffMs: 20, maxBackoffMs: 200 },
    new SpoolQueue(notAFolder, writer),
    store,
    events,
  );
  shipper.start();
  try {
    await eventually(() => seen.ready === 1 && seen.faults.length > 0, 30_000, 'the store ready and the read fault reported');
    expect(seen.faults).toEqual([['read', 'ENOTDIR']]);
    expect(seen.failed).toBe(0);
  } finally {
    await shipper.stop();
    await writer.close();
    await store.close();
  }
}, 60_000);

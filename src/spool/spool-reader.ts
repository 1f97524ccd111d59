import { open } from 'node:fs/promises';
import { decodeRecord, endOfNonZero, HEADER_BYTES, MAX_RECORD_BYTES } from './framing';
import { listSegmentsAsync, segmentPath } from './segments';
import type { SpoolPosition } from './checkpoint';
import type { DurableEnd } from './spool-writer';

export interface SpoolBatch {
  payloads: Buffer[];
  /** The segment each payload was read from (the same index): where its record sits on disk. */
  segments: number[];
  /** Where the next batch starts; the checkpoint to write once this batch is acknowledged. */
  next: SpoolPosition;
  /** Bad bytes skipped at the end of an older segment while reading this batch (counted by the caller). */
  skippedBadBytes: number;
  /** The batch ended because the durable data did, not because it was full: nothing more to read now. */
  reachedEnd: boolean;
}

/**
 * Reads up to `maxRecords` records from `from`, never past `durable` (the writer's
 * fsync'd end, as the link reports it: nothing half-written is ever read, even when valid
 * frames sit past it). Moves on to the next segment at the end of one's data (the end of
 * its file, or a header of zeros in a preallocated one); a bad tail in an older segment is
 * skipped and reported.
 */
export async function readBatch(dir: string, from: SpoolPosition, durable: DurableEnd, maxRecords: number, maxBytes = 8 * 1024 * 1024): Promise<SpoolBatch> {
  const payloads: Buffer[] = [];
  const segments: number[] = [];
  let position = { ...from };
  let skippedBadBytes = 0;
  let full = false;
  while (payloads.length < maxRecords) {
    const isTail = position.segment === durable.segment;
    if (position.segment > durable.segment) break;
    const handle = await open(segmentPath(dir, position.segment), 'r').catch(() => null);
    if (handle === null) {
      // Deleted or never written: go to the next segment that exists.
      const next = (await listSegmentsAsync(dir)).find((s) => s > position.segment);
      if (next === undefined || next > durable.segment) break;
      position = { segment: next, offset: 0 };
      continue;
    }
    let data: Buffer;
    let size: number;
    try {
      size = isTail ? durable.offset : (await handle.stat()).size;
      // Enough for maxBytes of records plus one whole record past it.
      const length = Math.max(0, Math.min(size - position.offset, maxBytes + HEADER_BYTES + MAX_RECORD_BYTES));
      data = Buffer.alloc(length);
      if (length > 0) await handle.read(data, 0, length, position.offset);
    } finally {
      await handle.close();
    }
    const windowReachesEnd = position.offset + data.length === size;
    let offset = 0;
    let segmentDone = windowReachesEnd;
    /** The data of an older segment ended before its file did (a preallocated segment's zeros, or bad bytes skipped). */
    let dataEnded = false;
    while (payloads.length < maxRecords && offset < maxBytes) {
      const r = decodeRecord(data, offset);
      if (r.kind === 'record') {
        payloads.push(Buffer.from(r.payload));
        segments.push(position.segment);
        offset = r.next;
        continue;
      }
      if (r.kind === 'end') {
        // A header of zeros: the end of the data in a preallocated segment (the tail's never comes before the durable end).
        if (!isTail) segmentDone = dataEnded = true;
      } else if (r.kind === 'incomplete' && !windowReachesEnd)
        segmentDone = false; // the window ended, not the segment
      else if (!isTail && offset < data.length) {
        // A bad tail in an older segment (nothing in it after a bad record can be trusted): skip it. Counted up to its
        // last byte that is not zero, as recovery counts it (a preallocated segment's zeros are not bad bytes).
        skippedBadBytes += windowReachesEnd ? endOfNonZero(data, offset) - offset : size - (position.offset + offset);
        offset = size - position.offset; // past it, so that it is never counted twice
        segmentDone = true;
      }
      break;
    }
    position = { segment: position.segment, offset: position.offset + offset };
    if (offset >= maxBytes || !segmentDone) full = true;
    if (payloads.length >= maxRecords || offset >= maxBytes || isTail || !segmentDone || (position.offset < size && !dataEnded)) break;
    // The end of an older segment: continue with the next one.
    const next = (await listSegmentsAsync(dir)).find((s) => s > position.segment);
    if (next === undefined) break;
    position = { segment: next, offset: 0 };
  }
  return { payloads, segments, next: position, skippedBadBytes, reachedEnd: !full && payloads.length < maxRecords };
}

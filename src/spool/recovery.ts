import { closeSync, fdatasyncSync, openSync, readFileSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeRecord, endOfNonZero, firstNonZero } from './framing';
import { SPARE_NAME, listSegments, segmentPath } from './segments';

export interface ScannedSegment {
  segment: number;
  /** Every good record, in order, with the offset just past it. */
  records: Array<{ payload: Buffer; end: number }>;
  /** Bytes up to the end of the last good record: where the data ends, and appends continue. */
  goodBytes: number;
  /**
   * Bytes after it that are not good records nor the zeros of a preallocated segment (a torn
   * write or corruption): from the first byte that is not zero to one past the last; 0 when clean.
   */
  badBytes: number;
  /** Where those bad bytes are ([start, end)), when there are any. */
  bad: { start: number; end: number } | null;
  /** The file's size (a preallocated segment's full size, data and zeros). */
  size: number;
}

/**
 * Reads a segment up to its last good record. The data ends at the first header that is
 * all zeros (a preallocated segment) or at the end of the file (one appended by an older
 * release). Records carry no resync marker, so after a bad one (a bad length or checksum,
 * or zeros inside a frame, which fail the checksum) nothing later in the segment can be
 * trusted: every byte after it that is not zero is counted as bad. A zero header followed
 * by bytes that are not zero (a torn write whose first page never reached the disk) is bad too.
 */
export function scanSegment(dir: string, segment: number): ScannedSegment {
  const data = readFileSync(segmentPath(dir, segment));
  const records: ScannedSegment['records'] = [];
  let offset = 0;
  for (;;) {
    const r = decodeRecord(data, offset);
    if (r.kind !== 'record') break;
    records.push({ payload: r.payload, end: r.next });
    offset = r.next;
  }
  const start = firstNonZero(data, offset);
  const bad = start < 0 ? null : { start, end: endOfNonZero(data, start) };
  return { segment, records, goodBytes: offset, badBytes: bad === null ? 0 : bad.end - bad.start, bad, size: data.length };
}

export interface RecoveryReport {
  /** Segments on disk, oldest first (none: a new spool starts at segment 1). */
  segments: number[];
  /** The segment to append to, and its good size (its bad tail, if any, was cut off or zeroed). */
  tail: { segment: number; size: number };
  /** Bytes of all segments after recovery (a preallocated segment counts its full size: it is on disk). */
  totalBytes: number;
  /** Bad tails found, by segment: each is logged and counted, and never stops start-up. */
  badTails: Array<{ segment: number; badBytes: number }>;
}

/**
 * Start-up recovery: checks every segment, removes a torn or corrupt tail from the last one
 * (where appends continue), and reports bad tails in older ones (their good records
 * are still shipped; the reader stops at the bad bytes and moves to the next segment).
 * The last segment's bad bytes are cut off when they reach the end of the file (an appended
 * segment, as before), and otherwise overwritten with zeros and fdatasync'd (a preallocated
 * one keeps its size): appends then continue at the good end, and a later reader never meets
 * a stale half-frame past the new data. A spare segment left half-prepared is deleted.
 * `visit` sees every good record, in order, during this one pass over the spool.
 */
export function recoverSpool(dir: string, visit?: (segment: number, payload: Buffer, end: number) => void): RecoveryReport {
  try {
    unlinkSync(join(dir, SPARE_NAME));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const segments = listSegments(dir);
  const badTails: RecoveryReport['badTails'] = [];
  let totalBytes = 0;
  if (segments.length === 0) return { segments: [], tail: { segment: 1, size: 0 }, totalBytes: 0, badTails };
  let lastScan: ScannedSegment | null = null;
  for (const segment of segments) {
    lastScan = scanSegment(dir, segment);
    if (visit) for (const r of lastScan.records) visit(segment, r.payload, r.end);
    if (lastScan.badBytes > 0) badTails.push({ segment, badBytes: lastScan.badBytes });
    totalBytes += lastScan.size;
  }
  const last = segments[segments.length - 1];
  lastScan = lastScan!;
  const bad = lastScan.bad;
  if (bad !== null) {
    const path = segmentPath(dir, last);
    if (bad.end === lastScan.size) {
      truncateSync(path, bad.start);
      totalBytes -= lastScan.size - bad.start;
    } else {
      const fd = openSync(path, 'r+');
      try {
        const zeros = Buffer.alloc(bad.end - bad.start);
        for (let done = 0; done < zeros.length;) done += writeSync(fd, zeros, done, zeros.length - done, bad.start + done);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  }
  return { segments, tail: { segment: last, size: lastScan.goodBytes }, totalBytes, badTails };
}

import { readFileSync, statSync, truncateSync } from 'node:fs';
import { decodeRecord } from './framing';
import { listSegments, segmentPath } from './segments';

export interface ScannedSegment {
  segment: number;
  /** Every good record, in order, with the offset just past it. */
  records: Array<{ payload: Buffer; end: number }>;
  /** Bytes up to the end of the last good record. */
  goodBytes: number;
  /** Bytes after it that are not good records (a torn write or corruption); 0 when clean. */
  badBytes: number;
}

/**
 * Reads a segment up to its last good record. Records carry no resync marker, so after
 * a bad one nothing later in the segment can be trusted: the rest is counted as bad.
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
  return { segment, records, goodBytes: offset, badBytes: data.length - offset };
}

export interface RecoveryReport {
  /** Segments on disk, oldest first (none: a new spool starts at segment 1). */
  segments: number[];
  /** The segment to append to, and its good size (its bad tail, if any, was cut off). */
  tail: { segment: number; size: number };
  /** Bytes of all segments after recovery. */
  totalBytes: number;
  /** Bad tails found, by segment: each is logged and counted, and never stops start-up. */
  badTails: Array<{ segment: number; badBytes: number }>;
}

/**
 * Start-up recovery: checks every segment, cuts a torn or corrupt tail off the last one
 * (where appends continue), and reports bad tails in older ones (their good records
 * are still shipped; the reader stops at the bad bytes and moves to the next segment).
 * `visit` sees every good record, in order, during this one pass over the spool.
 */
export function recoverSpool(dir: string, visit?: (segment: number, payload: Buffer, end: number) => void): RecoveryReport {
  const segments = listSegments(dir);
  const badTails: RecoveryReport['badTails'] = [];
  let totalBytes = 0;
  if (segments.length === 0) return { segments: [], tail: { segment: 1, size: 0 }, totalBytes: 0, badTails };
  let lastScan: ScannedSegment | null = null;
  for (const segment of segments) {
    lastScan = scanSegment(dir, segment);
    if (visit) for (const r of lastScan.records) visit(segment, r.payload, r.end);
    if (lastScan.badBytes > 0) badTails.push({ segment, badBytes: lastScan.badBytes });
    totalBytes += statSync(segmentPath(dir, segment)).size;
  }
  const last = segments[segments.length - 1];
  lastScan = lastScan!;
  if (lastScan.badBytes > 0) {
    truncateSync(segmentPath(dir, last), lastScan.goodBytes);
    totalBytes -= lastScan.badBytes;
  }
  return { segments, tail: { segment: last, size: lastScan.goodBytes }, totalBytes, badTails };
}

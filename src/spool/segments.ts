import { readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Segment files are named by a 20-digit sequence number, so that their names sort in
 * the order they were written: 00000000000000000001.seg, 00000000000000000002.seg, ...
 */
const SEGMENT_NAME = /^(\d{20})\.seg$/;

/** The next segment while it is being filled with zeros (SpoolWriter); renamed to its segment's name once durable. */
export const SPARE_NAME = 'next-segment.tmp';

export function segmentName(sequence: number): string {
  return `${String(sequence).padStart(20, '0')}.seg`;
}

export function segmentPath(dir: string, sequence: number): string {
  return join(dir, segmentName(sequence));
}

/** The sequence numbers of the segments in `dir`, oldest first (start-up and tests; the shipper's loop uses listSegmentsAsync). */
export function listSegments(dir: string): number[] {
  return sequencesOf(readdirSync(dir));
}

/** listSegments on libuv's pool: the event loop never waits on the disk for it. */
export async function listSegmentsAsync(dir: string): Promise<number[]> {
  return sequencesOf(await readdir(dir));
}

function sequencesOf(names: string[]): number[] {
  const sequences: number[] = [];
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (m) sequences.push(Number(m[1]));
  }
  return sequences.sort((a, b) => a - b);
}

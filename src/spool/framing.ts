import { crc32 } from 'node:zlib';

/**
 * One spool record on disk: [payload length, u32 LE][CRC-32 of the payload, u32 LE][payload].
 * The checksum lets recovery tell a torn or corrupt tail from good records after a crash.
 * Segments are preallocated and filled with zeros (SpoolWriter), so the end of the data is
 * the first header that is all zeros: no record has length 0. A segment written by an older
 * release (appended, no zero tail) simply ends at the end of the file; both read the same.
 */
export const HEADER_BYTES = 8;
/** Larger than any audit record; a length above it can only be corruption. */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** The most bytes a record could take once framed: what to reserve before frameInto(). */
export function maxFrameBytes(record: string | Buffer): number {
  return HEADER_BYTES + (typeof record === 'string' ? record.length * 3 : record.length);
}

/**
 * Whether every character of `s` is ASCII. Buffer.byteLength is native and fast on V8's
 * one-byte strings; equal lengths mean no character took more than one UTF-8 byte.
 */
function isAsciiString(s: string): boolean {
  return Buffer.byteLength(s, 'utf8') === s.length;
}

/**
 * Frames `record` straight into `target` at `offset` (at least maxFrameBytes(record) free
 * there): no intermediate buffer. Returns the frame's length. An ASCII string (the common
 * audit record: JSON with escaped free text) is copied as latin1, which for ASCII is the
 * same bytes as UTF-8 without the encoder's work; anything else is encoded as UTF-8.
 */
export function frameInto(target: Buffer, offset: number, record: string | Buffer): number {
  const start = offset + HEADER_BYTES;
  const length = typeof record === 'string' ? target.write(record, start, isAsciiString(record) ? 'latin1' : 'utf8') : record.copy(target, start);
  if (length === 0 || length > MAX_RECORD_BYTES) throw new RangeError(`spool record of ${length} bytes`);
  target.writeUInt32LE(length, offset);
  target.writeUInt32LE(crc32(target.subarray(start, start + length)), offset + 4);
  return HEADER_BYTES + length;
}

/** One record framed in a buffer of its own (dead-letter files, tests). */
export function encodeRecord(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(maxFrameBytes(payload));
  frameInto(frame, 0, payload);
  return frame;
}

export type DecodeResult =
  | { kind: 'record'; payload: Buffer; next: number }
  /** A header of zeros: the end of the data in a preallocated segment. */
  | { kind: 'end' }
  /** Not enough bytes for a whole record: the end of the data (old, appended segments), or a torn write. */
  | { kind: 'incomplete' }
  /** Bytes that are not a record: an impossible length or a checksum mismatch (a torn frame with zeros inside fails the checksum). */
  | { kind: 'corrupt' };

/** Decodes the record starting at `offset` of `data`. */
export function decodeRecord(data: Buffer, offset: number): DecodeResult {
  if (data.length - offset < HEADER_BYTES) return { kind: 'incomplete' };
  const length = data.readUInt32LE(offset);
  if (length === 0) return data.readUInt32LE(offset + 4) === 0 ? { kind: 'end' } : { kind: 'corrupt' };
  if (length > MAX_RECORD_BYTES) return { kind: 'corrupt' };
  const end = offset + HEADER_BYTES + length;
  if (end > data.length) return { kind: 'incomplete' };
  const payload = data.subarray(offset + HEADER_BYTES, end);
  if (crc32(payload) !== data.readUInt32LE(offset + 4)) return { kind: 'corrupt' };
  return { kind: 'record', payload, next: end };
}

const ZEROS = Buffer.alloc(64 * 1024);

/** The first byte at or after `from` that is not zero, or -1 (compared a block at a time: native memcmp, not a byte loop). */
export function firstNonZero(data: Buffer, from: number): number {
  for (let at = from; at < data.length; at += ZEROS.length) {
    const block = data.subarray(at, Math.min(data.length, at + ZEROS.length));
    if (block.equals(ZEROS.subarray(0, block.length))) continue;
    for (let i = 0; i < block.length; i++) if (block[i] !== 0) return at + i;
  }
  return -1;
}

/** One past the last byte that is not zero (at or after `from`), or `from` when there is none. */
export function endOfNonZero(data: Buffer, from: number): number {
  for (let end = data.length; end > from; end -= ZEROS.length) {
    const at = Math.max(from, end - ZEROS.length);
    const block = data.subarray(at, end);
    if (block.equals(ZEROS.subarray(0, block.length))) continue;
    for (let i = block.length - 1; i >= 0; i--) if (block[i] !== 0) return at + i + 1;
  }
  return from;
}

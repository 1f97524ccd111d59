import { crc32 } from 'node:zlib';

/**
 * One spool record on disk: [payload length, u32 LE][CRC-32 of the payload, u32 LE][payload].
 * The checksum lets recovery tell a torn or corrupt tail from good records after a crash.
 */
export const HEADER_BYTES = 8;
/** Larger than any audit record; a length above it can only be corruption. */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** The most bytes a record could take once framed: what to reserve before frameInto(). */
export function maxFrameBytes(record: string | Buffer): number {
  return HEADER_BYTES + (typeof record === 'string' ? record.length * 3 : record.length);
}

/**
 * Frames `record` straight into `target` at `offset` (at least maxFrameBytes(record) free
 * there): no intermediate buffer. Returns the frame's length.
 */
export function frameInto(target: Buffer, offset: number, record: string | Buffer): number {
  const start = offset + HEADER_BYTES;
  const length = typeof record === 'string' ? target.write(record, start, 'utf8') : record.copy(target, start);
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
  /** Not enough bytes for a whole record: the end of the data, or a torn write. */
  | { kind: 'incomplete' }
  /** Bytes that are not a record: an impossible length or a checksum mismatch. */
  | { kind: 'corrupt' };

/** Decodes the record starting at `offset` of `data`. */
export function decodeRecord(data: Buffer, offset: number): DecodeResult {
  if (data.length - offset < HEADER_BYTES) return { kind: 'incomplete' };
  const length = data.readUInt32LE(offset);
  if (length === 0 || length > MAX_RECORD_BYTES) return { kind: 'corrupt' };
  const end = offset + HEADER_BYTES + length;
  if (end > data.length) return { kind: 'incomplete' };
  const payload = data.subarray(offset + HEADER_BYTES, end);
  if (crc32(payload) !== data.readUInt32LE(offset + 4)) return { kind: 'corrupt' };
  return { kind: 'record', payload, next: end };
}

import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SpoolWriter } from '../../src/spool';
import { frameInto, maxFrameBytes } from '../../src/spool/framing';

/**
 * BENCH_ONLY=spool npm run bench: the spool's write path, preallocated segments written in
 * place against files appended to (the previous release), in interleaved rounds:
 * 1. fdatasync of a 4 KiB record: appended to a growing file vs written in place;
 * 2. SpoolWriter under concurrent append() callers: records/s and the group commit's
 *    latency (append to durable), both ways;
 * 3. framing an ASCII record: latin1 copy vs UTF-8 encoding.
 * The folder is under os.tmpdir() (BENCH_SPOOL_DIR to choose another disk).
 */
const ROUNDS = Number(process.env.BENCH_SPOOL_ROUNDS ?? 5);
const SYNCS = Number(process.env.BENCH_SPOOL_SYNCS ?? 500);
const WRITER_MS = Number(process.env.BENCH_SPOOL_WRITER_MS ?? 3000);
const CALLERS = Number(process.env.BENCH_SPOOL_CALLERS ?? 64);

function pct(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function fmt(us: number): string {
  return `${us.toFixed(0).padStart(5)} us`;
}

/** fdatasync times (us) of SYNCS 4 KiB writes, appended or in place in a preallocated file. */
function syncRound(dir: string, inPlace: boolean): number[] {
  const path = join(dir, inPlace ? 'inplace.dat' : 'append.dat');
  const record = Buffer.alloc(4096, 0x61);
  const fd = openSync(path, inPlace ? 'w+' : 'a');
  const out: number[] = [];
  try {
    if (inPlace) {
      const zeros = Buffer.alloc(1024 * 1024);
      for (let at = 0; at < SYNCS * 4096; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
      fdatasyncSync(fd);
    }
    for (let i = 0; i < SYNCS; i++) {
      if (inPlace) writeSync(fd, record, 0, record.length, i * 4096);
      else writeSync(fd, record);
      const t0 = process.hrtime.bigint();
      fdatasyncSync(fd);
      out.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return out;
}

/** A record about the size and shape of a final audit record (ASCII JSON). */
function auditLikeRecord(i: number): string {
  return JSON.stringify({
    event_id: `7d1f6a2c-0b7e-4c39-9f0e-${String(i).padStart(12, '0')}`,
    version: 2,
    received_at: '2026-12-03T18:00:00.000Z',
    completed_at: '2026-12-03T18:00:00.012Z',
    outcome: 'forwarded',
    status: 200,
    method: 'GET',
    interaction_id: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
    from_asid: '200000000359',
    to_asid: '918999198993',
    from_ods: 'A12345',
    to_ods: 'B82617',
    trace_id: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
    endpoint: 'https://provider.example.nhs.uk/B82617/STU3/1/gpconnect/fhir',
    request_bytes: 0,
    response_bytes: 2048,
    upstream_connect_ms: 1,
    upstream_first_byte_ms: 7,
    total_ms: 12,
    jwt_iss: 'https://consumer.example.nhs.uk',
    jwt_sub: '1111111111',
    requesting_practitioner: 'G13579135',
    requesting_organization: 'A12345',
    requested_scope: 'patient/*.read',
    error_code: '',
    instance: 'gw-1',
    environment: 'bench',
    seal_chain: 'bench-chain',
    seal_period: 1,
    seq: i,
    record_hash: 'f'.repeat(64),
  });
}

/** CALLERS loops of append() for WRITER_MS: records/s and append-to-durable latency. */
async function writerRound(dir: string, preallocate: boolean): Promise<{ rps: number; p50: number; p99: number; fsyncs: number }> {
  const folder = join(dir, `writer-${preallocate ? 'prealloc' : 'append'}-${Date.now()}`);
  mkdirSync(folder, { recursive: true });
  const writer = await SpoolWriter.open({ dir: folder, segmentBytes: 16 * 1024 * 1024, maxBytes: 4 * 1024 * 1024 * 1024, preallocate }, 1, 0, 0);
  const latencies: number[] = [];
  let n = 0;
  const until = performance.now() + WRITER_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await writer.append(auditLikeRecord(n++));
        latencies.push((performance.now() - t0) * 1000);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const fsyncs = writer.fsyncs;
  await writer.close();
  rmSync(folder, { recursive: true, force: true });
  return { rps: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99), fsyncs };
}

/** append() at a fixed rate (records/s, in 1 ms ticks) for WRITER_MS: append-to-durable latency. */
async function fixedRateRound(dir: string, preallocate: boolean, rate: number): Promise<{ p50: number; p99: number; late: number }> {
  const folder = join(dir, `fixed-${preallocate ? 'prealloc' : 'append'}-${Date.now()}`);
  mkdirSync(folder, { recursive: true });
  // Small segments, so that rounds of a few seconds rotate (and prepare spares) as a long run at this rate would.
  const writer = await SpoolWriter.open({ dir: folder, segmentBytes: 4 * 1024 * 1024, maxBytes: 4 * 1024 * 1024 * 1024, preallocate }, 1, 0, 0);
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  let late = 0;
  while (performance.now() - started < WRITER_MS) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    if (due - sent > rate / 100) late++;
    for (; sent < due; sent++) {
      const t0 = performance.now();
      pending.push(writer.append(auditLikeRecord(sent)).then(() => void latencies.push((performance.now() - t0) * 1000)));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  await writer.close();
  rmSync(folder, { recursive: true, force: true });
  return { p50: pct(latencies, 50), p99: pct(latencies, 99), late };
}

/**
 * ns per record: the copy into the frame as frameInto does it (ASCII check, then latin1)
 * against the previous UTF-8 encoding, and the CRC-32 both pay.
 */
function framingRound(): { latin1: number; utf8: number; crc: number; frame: number } {
  const records = Array.from({ length: 1000 }, (_, i) => auditLikeRecord(i));
  const target = Buffer.allocUnsafe(maxFrameBytes(records[0]) * 2);
  const time = (fn: (s: string) => void) => {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < 300; k++) for (const r of records) fn(r);
    return Number(process.hrtime.bigint() - t0) / (300 * records.length);
  };
  const latin1 = (s: string) => target.write(s, 8, Buffer.byteLength(s, 'utf8') === s.length ? 'latin1' : 'utf8');
  const utf8 = (s: string) => target.write(s, 8, 'utf8');
  const crc = (s: string) => crc32(target.subarray(8, 8 + s.length));
  for (const fn of [latin1, utf8, crc]) time(fn); // warm-up
  return { latin1: time(latin1), utf8: time(utf8), crc: time(crc), frame: time((s) => frameInto(target, 0, s)) };
}

export async function spoolBench(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_SPOOL_DIR ?? tmpdir(), 'gw-bench-spool-'));
  try {
    const append: number[] = [];
    const inPlace: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      append.push(...syncRound(dir, false));
      inPlace.push(...syncRound(dir, true));
    }
    process.stdout.write(`spool: fdatasync of a 4 KiB record, ${ROUNDS} interleaved rounds of ${SYNCS} (${dir})\n`);
    process.stdout.write(`  appended to a growing file:        p50 ${fmt(pct(append, 50))}   p99 ${fmt(pct(append, 99))}\n`);
    process.stdout.write(`  in place, preallocated file:       p50 ${fmt(pct(inPlace, 50))}   p99 ${fmt(pct(inPlace, 99))}\n`);

    const results = { append: [] as Awaited<ReturnType<typeof writerRound>>[], prealloc: [] as Awaited<ReturnType<typeof writerRound>>[] };
    for (let r = 0; r < Math.max(1, Math.floor(ROUNDS / 2)); r++) {
      results.append.push(await writerRound(dir, false));
      results.prealloc.push(await writerRound(dir, true));
    }
    const median = (xs: number[]) => pct(xs, 50);
    process.stdout.write(
      `spool: SpoolWriter, ${CALLERS} concurrent append() callers, ~0.9 KiB records, ${WRITER_MS} ms rounds (medians of ${results.append.length})\n`,
    );
    for (const [name, rs] of [
      ['appended (previous release)', results.append],
      ['preallocated, in place', results.prealloc],
    ] as const) {
      process.stdout.write(
        `  ${name.padEnd(30)} ${median(rs.map((x) => x.rps))
          .toFixed(0)
          .padStart(
            7,
          )} records/s   group commit p50 ${fmt(median(rs.map((x) => x.p50)))}   p99 ${fmt(median(rs.map((x) => x.p99)))}   fdatasyncs ${median(rs.map((x) => x.fsyncs))}\n`,
      );
    }

    const rate = Number(process.env.BENCH_SPOOL_RATE ?? 5000);
    const fixed = { append: [] as Awaited<ReturnType<typeof fixedRateRound>>[], prealloc: [] as Awaited<ReturnType<typeof fixedRateRound>>[] };
    for (let r = 0; r < Math.max(1, Math.floor(ROUNDS / 2)); r++) {
      fixed.append.push(await fixedRateRound(dir, false, rate));
      fixed.prealloc.push(await fixedRateRound(dir, true, rate));
    }
    process.stdout.write(`spool: SpoolWriter at a fixed ${rate} records/s, 4 MiB segments, ${WRITER_MS} ms rounds (medians of ${fixed.append.length})\n`);
    for (const [name, rs] of [
      ['appended (previous release)', fixed.append],
      ['preallocated, in place', fixed.prealloc],
    ] as const) {
      process.stdout.write(`  ${name.padEnd(30)} group commit p50 ${fmt(median(rs.map((x) => x.p50)))}   p99 ${fmt(median(rs.map((x) => x.p99)))}\n`);
    }

    const framing = Array.from({ length: 7 }, () => framingRound());
    const m = (k: 'latin1' | 'utf8' | 'crc' | 'frame') => median(framing.map((f) => f[k])).toFixed(0);
    process.stdout.write(
      `spool: framing a ${Buffer.byteLength(auditLikeRecord(0))}-byte ASCII record (medians of 7): copy as latin1 with the ASCII check ${m('latin1')} ns, as UTF-8 ${m('utf8')} ns; CRC-32 ${m('crc')} ns; whole frameInto ${m('frame')} ns\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_COLUMNS, AuditStore, verifyTrail } from '../../src/clickhouse';
import { EMPTY_ROOT, GENESIS_DIGEST, recordHashSql, signSeal, type Seal } from '../../src/seal';
import { ed25519, insertSeals, storeExec } from '../helpers/seal-forge';

/**
 * BENCH_ONLY=verify npm run bench: `records` sealed final records (1,000,000 by default,
 * BENCH_VERIFY_RECORDS) in the embedded engine, `perPeriod` to a seal period, generated
 * inside ClickHouse (INSERT ... SELECT FROM numbers(), each record's hash computed by the
 * canonical form's SQL), sealed from the per-period roots read back; then verify over
 * all of it, timed. Target: >= 200,000 records/s. Records in canonical form 2, some with
 * findings (BENCH_VERIFY_FORM=1: all in form 1).
 */
export async function verifyBench(records = Number(process.env.BENCH_VERIFY_RECORDS ?? 1_000_000), perPeriod = 1000, rounds = 3): Promise<void> {
  const dir = process.env.BENCH_VERIFY_DIR ?? mkdtempSync(join(tmpdir(), 'gw-bench-verify-'));
  const store = new AuditStore({ url: undefined, dataDir: dir, manageSchema: true, retentionDays: 3650, timeoutMs: 600_000 });
  await store.prepare();
  const exec = storeExec(store);
  const db = store.database;
  const key = ed25519();
  const periodMs = 60_000;
  const t0 = Math.floor((Date.now() - 30 * 24 * 3600_000) / periodMs) * periodMs;
  const chain = 'bench-chain';
  const form = Number(process.env.BENCH_VERIFY_FORM ?? 2);

  const generated = performance.now();
  const expr: Record<string, string> = {
    event_id: 'generateUUIDv4()',
    version: '2',
    trace_id: 'toString(generateUUIDv4())',
    received_at: `fromUnixTimestamp64Milli(toInt64(${t0} + intDiv(number, ${perPeriod}) * ${periodMs} + intDiv((number % ${perPeriod}) * ${periodMs}, ${perPeriod})), 'UTC')`,
    completed_at: `fromUnixTimestamp64Milli(toInt64(${t0} + intDiv(number, ${perPeriod}) * ${periodMs} + intDiv((number % ${perPeriod}) * ${periodMs}, ${perPeriod}) + 7), 'UTC')`,
    duration_ms: 'toFloat64(number % 997) / 8',
    consumer_asid: 'toString(200000000000 + number % 50)',
    consumer_ods: "concat('FA', toString(number % 50))",
    provider_asid: 'toString(918999198000 + number % 20)',
    provider_ods: "concat('A2', toString(number % 20))",
    interaction_id: "'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1'",
    method: "'GET'",
    target_host: "'gp.example.nhs.uk'",
    endpoint: "'https://gp.example.nhs.uk/A20047/STU3/1/gpconnect/fhir'",
    status: '200',
    outcome: "'forwarded'",
    response_bytes: 'number % 100000',
    upstream_ttfb_ms: 'toFloat64(number % 991) / 4',
    upstream_connect_ms: '-1',
    client_ip: "'10.0.0.1'",
    jwt_requesting_organization: "concat('https://fhir.nhs.uk/Id/ods-organization-code|FA', toString(number % 50))",
    gateway_instance: `'${chain}'`,
    environment: "'live'",
    seal_chain: `'${chain}'`,
    seal_period: `toUInt64(${t0} + intDiv(number, ${perPeriod}) * ${periodMs})`,
    seq: 'number + 1',
    // Canonical form 2 (BENCH_VERIFY_FORM=1: rows as before it, no findings); one record in ten with findings (a report-mode share).
    ...(form === 2
      ? { jwt_findings: "if(number % 10 = 0, ['JWT_EXPIRED', 'JWT_SUB_MISMATCH'], [])", interaction_findings: "if(number % 20 = 0, ['INTERACTION_PATH'], [])" }
      : { jwt_findings: '[]', interaction_findings: '[]' }),
    canonical_form: String(form),
  };
  const columns = AUDIT_COLUMNS.map((c) => c.name).filter((n) => n !== 'record_hash');
  const inner = columns.map((n) => `${expr[n] ?? (/^(U?Int|Float)/.test(AUDIT_COLUMNS.find((c) => c.name === n)!.type) ? '0' : "''")} AS ${n}`).join(', ');
  // The inner SELECT gives the columns their table types, so the outer hash reads what will be stored.
  const typed = AUDIT_COLUMNS.filter((c) => c.name !== 'record_hash')
    .map((c) => `CAST(${c.name}, '${c.type.replace(/'/g, "\\'")}') AS ${c.name}`)
    .join(', ');
  for (let done = 0; done < records; done += 250_000) {
    const n = Math.min(250_000, records - done);
    await exec(
      `INSERT INTO ${db}.transactions (${columns.join(', ')}, record_hash) SELECT *, ${recordHashSql()} AS record_hash FROM ` +
        `(SELECT ${typed} FROM (SELECT ${inner} FROM numbers(${done}, ${n})))`,
    );
  }
  const roots = await store.queryRows<{ p: string; n: string; lo: string; hi: string; root: string }>(
    `SELECT toString(seal_period) AS p, toString(count()) AS n, toString(min(seq)) AS lo, toString(max(seq)) AS hi,` +
      ' lower(hex(SHA256(arrayStringConcat(arrayMap(x -> tupleElement(x, 2), arraySort(groupArray(tuple(seq, unhex(record_hash))))))))) AS root' +
      ` FROM ${db}.transactions GROUP BY seal_period ORDER BY seal_period`,
    {},
  );
  const seals: Seal[] = [];
  let previous = GENESIS_DIGEST;
  for (const r of roots) {
    const start = Number(r.p);
    const seal = signSeal(
      {
        chain,
        instance: chain,
        period_start: new Date(start).toISOString(),
        period_end: new Date(start + periodMs).toISOString(),
        first_seq: Number(r.lo),
        last_seq: Number(r.hi),
        records: Number(r.n),
        dropped: [],
        records_root: Number(r.n) === 0 ? EMPTY_ROOT : r.root,
        previous_digest: previous,
        sealed_at: new Date(start + periodMs + 3).toISOString(),
        key_id: key.keyId,
      },
      key.privateKey,
    );
    seals.push(seal);
    previous = seal.digest;
  }
  for (let i = 0; i < seals.length; i += 5000) await insertSeals(exec, db, seals.slice(i, i + 5000));
  const setupSeconds = (performance.now() - generated) / 1000;
  process.stdout.write(`verify: ${records} sealed records (canonical form ${form}) in ${seals.length} periods generated in ${setupSeconds.toFixed(1)} s\n`);

  const rates: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    const cpu = process.cpuUsage(); // chDB runs in this process: its threads count here too
    const r = await verifyTrail(store, {}, key.publicKey);
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    if (r.status !== 'intact' || r.recordsChecked !== records) throw new Error(`verify bench: expected intact over ${records}, got ${JSON.stringify(r)}`);
    rates.push(r.recordsChecked / seconds);
    process.stdout.write(
      `  round ${i + 1}: ${r.recordsChecked} records, ${r.periodsChecked} periods in ${seconds.toFixed(2)} s: ${(r.recordsChecked / seconds).toFixed(0)} records/s;` +
        ` ${cpuSeconds.toFixed(2)} s of CPU (${(r.recordsChecked / cpuSeconds).toFixed(0)} records per CPU-second)\n`,
    );
  }
  rates.sort((a, b) => a - b);
  process.stdout.write(`verify: median ${rates[Math.floor(rates.length / 2)].toFixed(0)} records/s (target >= 200,000)\n`);
  await store.close();
}

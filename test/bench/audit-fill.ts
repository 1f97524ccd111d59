import { AuditStore } from '../../src/clickhouse';

/**
 * Fills an embedded audit store under DATA_DIR with `rows` generated transactions (INSERT
 * ... SELECT FROM numbers(), in the engine itself), spread over 30 days, for the
 * investigations benches. Run as its own process: the engine allows one open data
 * directory per process, and the gateway opens this one next.
 *   node dist/test/bench/audit-fill.js <dataDir> <rows>
 */
export function fillStatement(table: string, rows: number): string {
  return `INSERT INTO ${table} (event_id, version, trace_id, received_at, completed_at, duration_ms, consumer_asid, consumer_ods,
      provider_asid, provider_ods, interaction_id, method, target_host, endpoint, status, outcome, error_code, request_bytes, response_bytes,
      client_ip, jwt_requesting_organization, jwt_practitioner_id, jwt_practitioner_role, gateway_instance, environment)
    SELECT generateUUIDv4(number), 2, toString(generateUUIDv4(number + ${rows})),
      toDateTime64('2026-10-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 2592),
      toDateTime64('2026-10-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 2592 + 40), 40.5,
      toString(200000000000 + number % 40), concat('C', toString(number % 40)), toString(918999198900 + number % 25), concat('P', toString(number % 25)),
      'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1', 'GET', '127.0.0.1:8081', 'http://127.0.0.1:8081/A20047/STU3/1/gpconnect/fhir',
      if(number % 17 = 0, 403, 200), multiIf(number % 17 = 0, 'denied', number % 53 = 0, 'upstream_error', 'forwarded'),
      if(number % 17 = 0, 'FOT_CHECK_FAILED', ''), 120, 2048, '10.0.0.1', concat('C', toString(number % 40)), toString(number % 1000), 'R8000',
      'bench', if(number % 3 = 0, 'test', 'live')
    FROM numbers(${rows})`;
}

async function main(): Promise<void> {
  const [dataDir, rows] = [process.argv[2], Number(process.argv[3])];
  const store = new AuditStore({ url: undefined, dataDir, manageSchema: true, retentionDays: 3000, timeoutMs: 600_000 });
  await store.prepare();
  const client = (store as unknown as { client: { command(p: { query: string }): Promise<unknown> } }).client;
  await client.command({ query: fillStatement(store.table, rows) });
  await client.command({ query: `OPTIMIZE TABLE ${store.table} FINAL` });
  await store.close();
  process.stdout.write(`${JSON.stringify({ filled: rows })}\n`);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`audit-fill failed: ${err}\n`);
    process.exit(1);
  });
}

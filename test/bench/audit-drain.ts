import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { request } from 'node:http';
import { AuditSpool } from '../../src/spool';
import { Transaction } from '../../src/transaction';
import { CpuMeter, procRssMiB, productProcesses } from './procs';

/**
 * The backlog a 10-minute ClickHouse outage at 500 requests/s leaves (300,000 records
 * by default), written into a spool, then a gateway started on it: how long until the
 * shipper has drained it into the embedded engine, and so how many records/s it sustains.
 */
export async function measureDrain(
  dataDir: string,
  env: Record<string, string>,
  records = 300_000,
  core = '0',
): Promise<{
  records: number;
  seconds: number;
  startupSeconds: number;
  perSecond: number;
  /** CPU seconds over the drain: the gateway's own process, and its children (the store process, when it has one). */
  proxyCpuSeconds: number;
  childCpuSeconds: number;
  peakProxyMiB: number;
  peakStoreMiB: number;
}> {
  const { spool } = await AuditSpool.open({
    dir: join(dataDir, 'spool'),
    segmentBytes: 16 * 1024 * 1024,
    maxBytes: 4 * 1024 * 1024 * 1024,
    deadlineMs: 0,
    commitDelayMs: 0,
    context: { instance: 'bench', environment: 'bench' },
  });
  for (let i = 0; i < records; i++) {
    const tx = new Transaction('GET', '127.0.0.1');
    Object.assign(tx, {
      traceId: randomUUID(),
      consumerAsid: '200000000359',
      providerAsid: '918999198993',
      interactionId: 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1',
      endpoint: 'http://127.0.0.1:8081/A20047/STU3/1/gpconnect/fhir',
      targetHost: '127.0.0.1:8081',
    });
    tx.finish('forwarded', 200);
    spool.finish(tx);
  }
  await spool.close();

  const adminPort = 19000 + Math.floor(Math.random() * 900);
  const child = spawn('taskset', ['-c', core, process.execPath, join(__dirname, '..', '..', 'src', 'main.js')], {
    env: { ...process.env, ...env, DATA_DIR: dataDir, PORT: '0', ADMIN_PORT: String(adminPort), LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const started = performance.now();
  const meter = new CpuMeter(child.pid!);
  let peakProxyMiB = 0;
  let peakStoreMiB = 0;
  const sampleProcesses = () => {
    meter.sample();
    peakProxyMiB = Math.max(peakProxyMiB, procRssMiB(child.pid!) ?? 0);
    const store = productProcesses(child.pid!).store;
    if (store !== null) peakStoreMiB = Math.max(peakStoreMiB, procRssMiB(store) ?? 0);
  };
  const sampler = setInterval(sampleProcesses, 200);
  let firstShippedAt = 0;
  const pending = () =>
    new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port: adminPort, path: '/metrics' }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const m = /^spine_gateway_audit_records_pending (\d+)/m.exec(text);
          const shipped = /^spine_gateway_audit_records_shipped_total (\d+)/m.exec(text);
          if (shipped && Number(shipped[1]) > 0 && firstShippedAt === 0) firstShippedAt = performance.now();
          resolve(m && shipped && Number(shipped[1]) > 0 ? Number(m[1]) : -1);
        });
      });
      req.on('error', () => resolve(-1));
      req.end();
    });
  try {
    const deadline = started + 600_000;
    while (performance.now() < deadline) {
      if ((await pending()) === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const done = performance.now();
    sampleProcesses();
    const cpu = meter.read();
    const seconds = (done - started) / 1000;
    // Start-up (recovery scans the whole spool) is part of the drain time, not of the shipping rate.
    const startupSeconds = (firstShippedAt - started) / 1000;
    return {
      records,
      seconds,
      startupSeconds,
      perSecond: records / ((done - firstShippedAt) / 1000),
      proxyCpuSeconds: cpu.proxy,
      childCpuSeconds: cpu.children,
      peakProxyMiB,
      peakStoreMiB,
    };
  } finally {
    clearInterval(sampler);
    child.kill('SIGTERM');
  }
}

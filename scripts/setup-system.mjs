#!/usr/bin/env node
// npm run setup:system: installs the Debian packages the test suite needs (ClickHouse
// server, Prometheus and promtool, openssl, chattr). As root it runs apt-get; otherwise
// it prints the exact command to run. The list is scripts/system-packages.json, which the
// test helpers read too, so a missing program names the same package everywhere.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const { programs } = JSON.parse(readFileSync(new URL('./system-packages.json', import.meta.url), 'utf8'));
const has = (program) => spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
const missing = [
  ...new Set(
    Object.entries(programs)
      .filter(([program]) => !has(program))
      .map(([, pkg]) => pkg),
  ),
];

if (missing.length === 0) {
  console.log(`setup:system: every program the tests need is installed (${Object.keys(programs).join(', ')})`);
  process.exit(0);
}
const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
if (process.getuid?.() !== 0) {
  console.error(`setup:system: missing Debian packages: ${missing.join(' ')}\nrun as root: ${command}`);
  process.exit(1);
}
console.log(`setup:system: installing ${missing.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
} catch (err) {
  console.error(`setup:system: apt-get failed (${err.status ?? err.message}); run it yourself: ${command}`);
  process.exit(1);
}
const still = Object.keys(programs).filter((program) => !has(program));
if (still.length > 0) {
  console.error(`setup:system: still missing after the install: ${still.join(', ')}`);
  process.exit(1);
}
console.log('setup:system: done');

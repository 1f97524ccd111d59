import { readdirSync, readFileSync } from 'node:fs';
import { dirname, basename, join, posix } from 'node:path';
import { Registry } from 'prom-client';
import request from 'supertest';
import { parseAllDocuments } from 'yaml';
import { adminBindAddress, createAdminApp } from '../../../src/admin';
import { loadSettings, type Settings } from '../../../src/config';
import { settingsSchema } from '../../../src/config/settings';
import { STORE_STOP_TIMEOUT_MS } from '../../../src/supervisor';
import { REPO } from '../../helpers/test-kit';

/**
 * The Kubernetes manifests in deploy/kubernetes, parsed and checked against the code they
 * deploy: settings names and values (settingsSchema, loadSettings), the admin app's routes,
 * the ports the settings open, the shutdown's timings, the Dockerfile's layout. No schema
 * validator runs here: kubectl validates only against a live API server, and kubeconform
 * is not a Debian package (README "Deployment"); these are structural checks of our own.
 */
const DIR = join(REPO, 'deploy', 'kubernetes');

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are free-form YAML, checked field by field below */
type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
};

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
const parsed = files.map((file) => ({ file, docs: parseAllDocuments(readFileSync(join(DIR, file), 'utf8')) }));
const manifests: Array<Manifest & { file: string }> = parsed.flatMap(({ file, docs }) => docs.map((d) => ({ ...(d.toJS() as Manifest), file })));
const only = (kind: string, name?: string): Manifest => {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0];
};

const KNOWN_KINDS = new Set([
  'v1/ConfigMap',
  'v1/Service',
  'apps/v1/StatefulSet',
  'policy/v1/PodDisruptionBudget',
  'kustomize.config.k8s.io/v1beta1/Kustomization',
]);

const sts = only('StatefulSet');
const pod = sts.spec.template.spec;
const container = pod.containers[0];
const envMap = only('ConfigMap', container.envFrom[0].configMapRef.name);
/** What the pod's environment gives the gateway: the ConfigMap, and the Secret-sourced variables as placeholders. */
const podEnv: Record<string, string> = {
  ...envMap.data,
  ...Object.fromEntries((container.env ?? []).map((e: any) => [e.name, e.value ?? 'http://gateway:secret@clickhouse:8123/spine_audit'])),
};
const settings: Settings = loadSettings(podEnv);
const portNamed = (name: string | number): number => (typeof name === 'number' ? name : container.ports.find((p: any) => p.name === name)?.containerPort);
const mountOf = (volume: string) => container.volumeMounts.filter((m: any) => m.name === volume);
const volumeNamed = (name: string) => pod.volumes.find((v: any) => v.name === name);
const services = manifests.filter((m) => m.kind === 'Service');

/** A Kubernetes quantity (4Gi, 512Mi, 1G) in bytes. */
function bytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (m === null) throw new Error(`not a quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

test('every file parses, each document a kind we know with a valid name, and the kustomization lists every one', () => {
  expect(files.length).toBeGreaterThanOrEqual(6);
  for (const { file, docs } of parsed) {
    for (const d of docs) expect({ file, errors: d.errors.map(String), warnings: d.warnings.map(String) }).toEqual({ file, errors: [], warnings: [] });
  }
  for (const m of manifests) {
    expect({ file: m.file, known: KNOWN_KINDS.has(`${m.apiVersion}/${m.kind}`) }).toEqual({ file: m.file, known: true });
    if (m.kind !== 'Kustomization') expect(m.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  }
  const kustomization = only('Kustomization') as any;
  expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
});

test('every environment variable is a real setting, and together they load as the gateway loads them', () => {
  const names = new Set(Object.keys(settingsSchema.shape));
  const given = [...Object.keys(envMap.data), ...(container.env ?? []).map((e: any) => e.name)];
  expect(given.filter((n) => !names.has(n))).toEqual([]);
  expect(new Set(given).size).toBe(given.length); // nothing set twice (env would silently win over envFrom)
  expect(settings.AUDIT_FAILURE_MODE).toBe('closed');
  // The ClickHouse URL holds a password: from a Secret, never the ConfigMap.
  expect(envMap.data.CLICKHOUSE_URL).toBeUndefined();
  expect(container.env.find((e: any) => e.name === 'CLICKHOUSE_URL').valueFrom.secretKeyRef).toMatchObject({
    name: expect.any(String),
    key: expect.any(String),
  });
});

test('the container ports are the ports the settings open, in the Dockerfile image layout', () => {
  expect(portNamed('proxy')).toBe(settings.PORT);
  expect(portNamed('admin')).toBe(settings.ADMIN_PORT);
  const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const exposed = /^EXPOSE (.+)$/m.exec(finalStage)![1].split(/\s+/).map(Number);
  expect(exposed.sort()).toEqual([settings.PORT, settings.ADMIN_PORT].sort());
  expect(/^USER node$/m.test(finalStage)).toBe(true);
  // The volume goes where the image prepared a folder for the node user.
  const imageDataDir = /DATA_DIR=(\S+)/.exec(finalStage)![1];
  expect(finalStage).toContain(`chown node:node ${imageDataDir}`);
  expect(mountOf('data')[0].mountPath).toBe(imageDataDir);
  expect(settings.HOST).toBe('0.0.0.0');
});

test('probes: readiness on /readyz and liveness on /healthz, on the admin port, which listens on the pod address', async () => {
  const app = createAdminApp(new Registry(), [], null, { tokens: null, metricsOpen: false });
  const probes = { readinessProbe: '/readyz', livenessProbe: '/healthz', startupProbe: '/healthz' } as const;
  for (const [probe, path] of Object.entries(probes)) {
    const get = container[probe].httpGet;
    expect({ probe, path: get.path }).toEqual({ probe, path });
    expect({ probe, port: portNamed(get.port) }).toEqual({ probe, port: settings.ADMIN_PORT });
    expect((await request(app).get(get.path)).status).toBe(200); // a route the admin app serves
  }
  expect((await request(app).get('/ready')).status).toBe(404); // (the check above can fail)
  // Without ADMIN_TOKENS_FILE the admin port would stay on 127.0.0.1, out of the kubelet's reach.
  expect(adminBindAddress(settings).host).toBe(settings.HOST);
});

test('the volume claim holds DATA_DIR, one per pod (ReadWriteOnce), larger than the spool cap', () => {
  const claims = sts.spec.volumeClaimTemplates;
  expect(claims).toHaveLength(1);
  const [mount] = mountOf(claims[0].metadata.name);
  expect(mount.readOnly ?? false).toBe(false);
  const rel = posix.relative(mount.mountPath, settings.DATA_DIR);
  expect(rel === '' || (!rel.startsWith('..') && !posix.isAbsolute(rel))).toBe(true);
  expect(claims[0].spec.accessModes).toEqual(['ReadWriteOnce']);
  expect(bytes(claims[0].spec.resources.requests.storage)).toBeGreaterThan(settings.AUDIT_SPOOL_MAX_BYTES);
  expect(sts.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
  expect(pod.volumes.map((v: any) => v.name)).not.toContain(claims[0].metadata.name); // never a shared volume of the same name
});

test('SIGTERM: the grace period covers the preStop delay, SHUTDOWN_GRACE_MS and the store stop, with a margin', () => {
  const command: string[] = container.lifecycle.preStop.exec.command;
  expect(command[0]).toBe('sleep');
  const preStopMs = Number(command[1]) * 1000;
  expect(preStopMs).toBeGreaterThanOrEqual(3000);
  const needed = preStopMs + settings.SHUTDOWN_GRACE_MS + STORE_STOP_TIMEOUT_MS;
  expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(needed + 5000);
  expect(sts.spec.podManagementPolicy).toBe('Parallel');
});

test('every *_FILE setting names a file mounted from a Secret (the directory from a ConfigMap)', () => {
  const fileSettings = Object.entries(settings).filter(([k, v]) => k.endsWith('_FILE') && typeof v === 'string') as Array<[string, string]>;
  expect(fileSettings.map(([k]) => k)).toEqual(
    expect.arrayContaining(['ADMIN_TOKENS_FILE', 'TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CLIENT_CA_FILE', 'AUDIT_SIGNING_KEY_FILE', 'DIRECTORY_FILE']),
  );
  for (const [name, path] of fileSettings) {
    if (name === 'INTERACTIONS_FILE' && !(name in envMap.data)) continue; // the image's own copy
    const mount = container.volumeMounts.find((m: any) => m.mountPath === dirname(path));
    expect({ name, mounted: mount !== undefined }).toEqual({ name, mounted: true });
    const volume = volumeNamed(mount.name);
    const source = volume.secret ?? volume.configMap;
    expect({ name, items: source.items.map((i: any) => i.path) }).toEqual({ name, items: expect.arrayContaining([basename(path)]) });
    expect({ name, readOnly: mount.readOnly }).toEqual({ name, readOnly: true });
    if (name === 'DIRECTORY_FILE') expect(volume.configMap).toBeDefined();
    else expect({ name, secret: volume.secret !== undefined, mode: volume.secret.defaultMode }).toEqual({ name, secret: true, mode: 0o440 });
  }
});

test('locked down: non-root, read-only root file system (DATA_DIR and /tmp writable), no privilege escalation, no capabilities, resources set', () => {
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, fsGroup: pod.securityContext.runAsGroup });
  expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
  expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false });
  expect(container.securityContext.capabilities.drop).toEqual(['ALL']);
  expect(container.securityContext.capabilities.add).toBeUndefined();
  const writable = container.volumeMounts.filter((m: any) => !m.readOnly).map((m: any) => m.mountPath);
  expect(writable.sort()).toEqual([mountOf('data')[0].mountPath, '/tmp'].sort());
  expect(container.resources.requests).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
  expect(container.resources.limits.memory).toBeDefined();
  expect(pod.automountServiceAccountToken).toBe(false);
  expect(pod.enableServiceLinks).toBe(false); // Service links would inject variables such as <SERVICE>_PORT
});

test('Services: a headless one for the StatefulSet, the proxy port alone behind a plain-TCP LoadBalancer, the admin port cluster-internal', () => {
  const podLabels = sts.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(sts.spec.selector.matchLabels)) expect(podLabels[k]).toBe(v);
  for (const s of [...services, only('PodDisruptionBudget')]) {
    const selector = s.kind === 'Service' ? s.spec.selector : s.spec.selector.matchLabels;
    for (const [k, v] of Object.entries(selector)) expect({ service: s.metadata.name, [k]: podLabels[k] }).toEqual({ service: s.metadata.name, [k]: v });
  }
  const headless = only('Service', sts.spec.serviceName);
  expect(headless.spec.clusterIP).toBe('None');

  const balancers = services.filter((s) => s.spec.type === 'LoadBalancer');
  expect(balancers).toHaveLength(1);
  const lb = balancers[0];
  expect(lb.spec.ports.map((p: any) => ({ protocol: p.protocol, target: portNamed(p.targetPort) }))).toEqual([{ protocol: 'TCP', target: settings.PORT }]);
  expect(lb.spec.externalTrafficPolicy).toBe('Local'); // no extra hop that would replace the consumer's address
  expect(JSON.stringify(lb.metadata.annotations ?? {})).not.toMatch(/ssl|tls|https|certificate/i); // no TLS termination asked of the balancer

  const adminServices = services.filter((s) => s.spec.ports.some((p: any) => portNamed(p.targetPort) === settings.ADMIN_PORT));
  expect(adminServices.length).toBeGreaterThan(0);
  for (const s of adminServices)
    expect({ service: s.metadata.name, type: s.spec.type ?? 'ClusterIP' }).toEqual({ service: s.metadata.name, type: 'ClusterIP' });
  expect(services.some((s) => s.spec.type === 'NodePort')).toBe(false);
});

// deploy/kubernetes/, rendered offline (base and the example overlay, by
// test/helpers/kustomize.ts) and checked: every object against the Kubernetes
// schemas of the `kubernetes-models` packages, and the properties docs/operations.md
// promises — only discovery and JWKS public, probes on the right endpoints, a
// stop sequence that fits the grace period, the restricted Pod Security profile.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, VARIABLES } from '../../src/config.js';
import { PATHS } from '../../src/http/provider.js';
import { AGENT_FILE_NAME } from '../../src/http/routes/agent.js';
import { kustomize, podSpecs, type K8sObject } from '../helpers/kustomize.js';
import { checkTool } from '../helpers/tools.js';

const DEPLOY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/kubernetes');
const RENDERED = {
  base: kustomize(path.join(DEPLOY, 'base')),
  'overlays/example': kustomize(path.join(DEPLOY, 'overlays/example')),
};
const TREES = Object.entries(RENDERED);

const SCHEMA_PACKAGES = 'kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0';
const POD_LABELS = { 'app.kubernetes.io/name': 'jenkins-oidc', 'app.kubernetes.io/component': 'server' };

// Manifests are plain parsed YAML.
type Any = any;

function one(objects: K8sObject[], kind: string, name?: string): Any {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, found ${found.length}`);
  return found[0];
}

function ingressPaths(ingress: Any): { host: string; path: string; pathType: string; service: string; port: string }[] {
  return ingress.spec.rules.flatMap((rule: Any) =>
    rule.http.paths.map((p: Any) => ({ host: rule.host, path: p.path, pathType: p.pathType, service: p.backend.service.name, port: p.backend.service.port.name })),
  );
}

const selects = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

type Model = new (data: unknown) => { validate(): void };
async function loadSchemas(): Promise<Record<string, Record<string, Model>> | undefined> {
  const modules: Record<string, string> = {
    v1: 'kubernetes-models/v1',
    'apps/v1': 'kubernetes-models/apps/v1',
    'batch/v1': 'kubernetes-models/batch/v1',
    'policy/v1': 'kubernetes-models/policy/v1',
    'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
    'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
  };
  const loaded: Record<string, Record<string, Model>> = {};
  try {
    // One at a time: jest's ESM loader fails concurrent imports of a shared module graph.
    for (const [apiVersion, specifier] of Object.entries(modules)) loaded[apiVersion] = await import(specifier);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' && !/Cannot find module/.test((err as Error).message)) throw err;
    return undefined;
  }
  return loaded;
}
const schemas = await loadSchemas();
checkTool(schemas !== undefined, `the Kubernetes schema packages ${SCHEMA_PACKAGES} (schema validation)`, `npm install -D -E ${SCHEMA_PACKAGES}`);
const withSchemas = schemas ? test.each : test.skip.each;
const schemaTitle = schemas ? '%s: every object validates against the Kubernetes schemas' : '%s: schema validation SKIPPED';

withSchemas(TREES)(schemaTitle, (_tree, objects) => {
  const problems: string[] = [];
  for (const o of objects) {
    const model = schemas![o.apiVersion]?.[o.kind];
    if (!model) {
      problems.push(`${o.kind}/${o.metadata.name}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new model(o).validate();
    } catch (err) {
      problems.push(`${o.kind}/${o.metadata.name}: ${(err as Error).message}`);
    }
  }
  expect(problems).toEqual([]);
});

(schemas ? test : test.skip)('a wrong type fails schema validation (the check has teeth)', () => {
  const deployment = structuredClone(one(RENDERED.base, 'Deployment'));
  deployment.spec.template.spec.containers[0].ports[0].containerPort = '8080';
  expect(() => new schemas!['apps/v1']!.Deployment!(deployment).validate()).toThrow('containerPort must be integer');
});

test.each(TREES)('%s: the objects a deployment needs, and nothing else', (tree, objects) => {
  const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  expect(kinds).toEqual(
    [
      'ConfigMap/jenkins-oidc',
      'Deployment/jenkins-oidc',
      'Ingress/jenkins-oidc-internal',
      'Ingress/jenkins-oidc-public',
      'Job/jenkins-oidc-migrate',
      'PodDisruptionBudget/jenkins-oidc',
      'Service/jenkins-oidc',
      'ServiceMonitor/jenkins-oidc',
      ...(tree === 'base' ? [] : ['Namespace/jenkins-oidc']),
    ].sort(),
  );
});

describe.each(TREES)('%s', (tree, objects) => {
  const deployment = one(objects, 'Deployment');
  const job = one(objects, 'Job');
  const service = one(objects, 'Service');
  const config = one(objects, 'ConfigMap').data as Record<string, string>;
  const server = deployment.spec.template.spec.containers[0];
  const env = (container: Any) => Object.fromEntries(container.env.map((e: Any) => [e.name, e]));

  test('public Ingress: exactly discovery and JWKS, exact paths, on the ISSUER\'s host', () => {
    const ingress = one(objects, 'Ingress', 'jenkins-oidc-public');
    const issuerHost = new URL(config.ISSUER!).host;
    expect(ingressPaths(ingress)).toEqual([
      { host: issuerHost, path: PATHS.discovery, pathType: 'Exact', service: 'jenkins-oidc', port: 'http' },
      { host: issuerHost, path: PATHS.jwks, pathType: 'Exact', service: 'jenkins-oidc', port: 'http' },
    ]);
    expect(ingress.spec.tls).toEqual([{ hosts: [issuerHost], secretName: 'jenkins-oidc-public-tls' }]);
  });

  test('internal Ingress: the token, revocation, id-token and agent routes, exact paths, on another class and host', () => {
    const internal = one(objects, 'Ingress', 'jenkins-oidc-internal');
    const paths = ingressPaths(internal);
    expect(paths.map((p) => [p.path, p.pathType, p.service, p.port])).toEqual(
      [PATHS.token, PATHS.revocation, PATHS.idToken, `/agent/${AGENT_FILE_NAME}`, `/agent/${AGENT_FILE_NAME}.sha256`].map((p) => [p, 'Exact', 'jenkins-oidc', 'http']),
    );
    const publicIngress = one(objects, 'Ingress', 'jenkins-oidc-public');
    expect(internal.spec.ingressClassName).not.toBe(publicIngress.spec.ingressClassName);
    expect(paths[0]!.host).not.toBe(ingressPaths(publicIngress)[0]!.host);
  });

  test('the Service selects the server pods only, and both Ingresses use its http port', () => {
    expect(service.spec.selector).toEqual(POD_LABELS);
    expect(deployment.spec.selector.matchLabels).toEqual(POD_LABELS);
    expect(selects(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    expect(selects(service.spec.selector, job.spec.template.metadata.labels)).toBe(false);
    expect(service.spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http' },
      { name: 'metrics', port: 9464, targetPort: 'metrics' },
    ]);
    expect(server.ports).toEqual([
      { name: 'http', containerPort: 8080 },
      { name: 'metrics', containerPort: 9464 },
    ]);
  });

  test('replicas spread over zones and nodes, and a disruption budget keeps all but one', () => {
    expect(deployment.spec.replicas).toBe(tree === 'base' ? 2 : 3);
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    const spread = deployment.spec.template.spec.topologySpreadConstraints;
    expect(spread.map((s: Any) => [s.topologyKey, s.whenUnsatisfiable])).toEqual([
      ['topology.kubernetes.io/zone', 'ScheduleAnyway'],
      ['kubernetes.io/hostname', 'DoNotSchedule'],
    ]);
    for (const s of spread) expect(s.labelSelector.matchLabels).toEqual(POD_LABELS);
    const pdb = one(objects, 'PodDisruptionBudget');
    expect(pdb.spec).toEqual({ maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: POD_LABELS } });
  });

  test('readiness on /readyz, liveness and start-up on /healthz', () => {
    expect(server.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(server.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(server.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    // /readyz waits up to 2 s for the database: the probe must wait longer.
    expect(server.readinessProbe.timeoutSeconds).toBeGreaterThan(2);
    // Start-up may wait a minute for the database before liveness applies.
    expect(server.startupProbe.periodSeconds * server.startupProbe.failureThreshold).toBeGreaterThanOrEqual(90);
  });

  test('preStop sleep + SHUTDOWN_GRACE + SHUTDOWN_TIMEOUT fit in the termination grace period', () => {
    const [sleep, seconds] = server.lifecycle.preStop.exec.command;
    expect(sleep).toBe('sleep');
    // What `serve` reads from this ConfigMap: SHUTDOWN_GRACE and SHUTDOWN_TIMEOUT, or their defaults.
    const set = (name: string): string | undefined => env(server)[name]?.value ?? config[name];
    const { shutdownGrace, shutdownTimeout } = loadConfig({ SHUTDOWN_GRACE: set('SHUTDOWN_GRACE'), SHUTDOWN_TIMEOUT: set('SHUTDOWN_TIMEOUT') }, '/srv');
    const sequence = Number(seconds) + shutdownGrace + shutdownTimeout;
    expect(Number(seconds)).toBeGreaterThanOrEqual(5);
    expect(sequence).toBe(20);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(sequence + 5);
  });

  test('migrations run in the Job, not at start', () => {
    expect(env(server).MIGRATE_ON_START).toEqual({ name: 'MIGRATE_ON_START', value: 'false' });
    const migrate = job.spec.template.spec.containers[0];
    expect(migrate.args).toEqual(['migrate']);
    expect(migrate.image).toBe(server.image);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(config.MIGRATE_ON_START).toBeUndefined();
  });

  test('DATABASE_URL from a Secret, the key-encryption key as a mounted Secret file, and only where it is used', () => {
    // migrate needs neither the key-encryption key nor the issuer: the Job holds no key.
    const jobContainer = (podSpecs(job)[0] as Any).containers[0];
    expect(env(jobContainer).DATABASE_URL).toEqual({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'jenkins-oidc-database', key: 'url' } } });
    expect(env(jobContainer).KEY_ENCRYPTION_KEY_FILE).toBeUndefined();
    expect((podSpecs(job)[0] as Any).volumes.map((v: Any) => v.name)).toEqual(['tmp']);
    for (const spec of podSpecs(deployment) as Any[]) {
      const container = spec.containers[0];
      expect(env(container).DATABASE_URL).toEqual({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'jenkins-oidc-database', key: 'url' } } });
      expect(env(container).KEY_ENCRYPTION_KEY).toBeUndefined();
      const file = env(container).KEY_ENCRYPTION_KEY_FILE.value as string;
      const mount = container.volumeMounts.find((m: Any) => file.startsWith(`${m.mountPath}/`));
      expect(mount).toMatchObject({ name: 'key-encryption-key', readOnly: true });
      const volume = spec.volumes.find((v: Any) => v.name === mount.name);
      expect(volume.secret).toEqual({
        secretName: 'jenkins-oidc-key-encryption-key',
        defaultMode: 0o440,
        items: [{ key: 'key', path: path.posix.relative(mount.mountPath, file) }],
      });
    }
    expect(Object.keys(config).filter((k) => /KEY|URL|PASSWORD|SECRET/.test(k) && k !== 'DATABASE_POOL_SIZE')).toEqual([]);
  });

  test('every pod meets the restricted Pod Security profile, with a read-only root and /tmp on an emptyDir', () => {
    for (const spec of [deployment, job].flatMap((o) => podSpecs(o)) as Any[]) {
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec.securityContext.runAsUser).not.toBe(0);
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const c of spec.containers) {
        expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        expect(c.resources.requests).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
        expect(c.resources.limits.memory).toEqual(expect.any(String));
      }
      expect(spec.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } });
      for (const v of spec.volumes) expect(Object.keys(v).filter((k) => k !== 'name')).toEqual([expect.stringMatching(/^(emptyDir|secret)$/)]);
    }
  });

  test('metrics on their own port, scraped by the ServiceMonitor, never through an Ingress', () => {
    expect(env(server).METRICS_PORT).toEqual({ name: 'METRICS_PORT', value: '9464' });
    const monitor = one(objects, 'ServiceMonitor');
    expect(selects(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    expect(monitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    for (const ingress of objects.filter((o) => o.kind === 'Ingress')) {
      for (const p of ingressPaths(ingress)) expect(p.port).toBe('http');
    }
  });

  test('WORKERS is a number, not auto, within the CPU the pod requests and its memory limit', () => {
    // auto would count every core of the node: the pods have no CPU limit.
    const workers = env(server).WORKERS?.value ?? config.WORKERS;
    expect(workers).toMatch(/^\d+$/);
    const cpu = server.resources.requests.cpu as string;
    const cores = cpu.endsWith('m') ? Number(cpu.slice(0, -1)) / 1000 : Number(cpu);
    expect(Number(workers)).toBeLessThanOrEqual(Math.max(1, Math.ceil(cores)));
    // docs/operations.md "Sizing": about 200 MB per process serving, 75 MB more for a primary.
    const limitMb = (Number((server.resources.limits.memory as string).replace(/Mi$/, '')) * 1048576) / 1e6;
    expect(limitMb).toBeGreaterThanOrEqual(Number(workers) * 200 + (Number(workers) > 1 ? 75 : 0));
  });

  test('every environment variable is one the service reads (no misspelt names)', () => {
    const names = [...Object.keys(config), ...[deployment, job].flatMap((o) => (podSpecs(o) as Any[]).flatMap((s) => s.containers.flatMap((c: Any) => c.env.map((e: Any) => e.name))))];
    expect(names.filter((n) => !(n in VARIABLES))).toEqual([]);
    for (const spec of [deployment, job].flatMap((o) => podSpecs(o)) as Any[]) {
      for (const c of spec.containers) expect(c.envFrom).toEqual([{ configMapRef: { name: 'jenkins-oidc' } }]);
    }
  });
});

test('the example overlay: its namespace everywhere, restricted Pod Security, its image, issuer and hosts', () => {
  const objects = RENDERED['overlays/example'];
  for (const o of objects) expect(o.kind === 'Namespace' ? o.metadata.name : o.metadata.namespace).toBe('jenkins-oidc');
  expect(one(objects, 'Namespace').metadata.labels).toEqual({ 'pod-security.kubernetes.io/enforce': 'restricted' });
  for (const o of objects) {
    for (const spec of podSpecs(o) as Any[]) expect(spec.containers[0].image).toBe('registry.example.com/platform/jenkins-oidc:0.2.0');
  }
  expect(one(objects, 'ConfigMap').data).toEqual({ ISSUER: 'https://oidc.acme.example', TRUST_PROXY: 'true', LOG_LEVEL: 'info', DATABASE_POOL_SIZE: '10', WORKERS: '1' });
  const server = one(objects, 'Deployment').spec.template.spec.containers[0];
  expect(server.resources).toEqual({ requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '512Mi' } });
  expect(one(objects, 'Ingress', 'jenkins-oidc-internal').spec.ingressClassName).toBe('nginx-internal');
  expect(ingressPaths(one(objects, 'Ingress', 'jenkins-oidc-internal'))[0]!.host).toBe('oidc.ci.acme.internal');
  // The base is untouched by rendering the overlay.
  expect(one(RENDERED.base, 'Deployment').spec.template.spec.containers[0].image).toBe('jenkins-oidc');
});

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(import.meta.dirname, '..');
const folder = path.join(root, 'deploy', 'kubernetes');

// Loose shapes: the tests check each field they read, so a missing one fails an assertion.
type Manifest = Record<string, any>;

function load(file: string): Manifest[] {
  const documents = parseAllDocuments(readFileSync(path.join(folder, file), 'utf8'));
  for (const document of documents) {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
  }
  return documents.map((document) => document.toJS() as Manifest);
}

function loadOne(file: string, kind: string): Manifest {
  const manifests = load(file);
  expect(manifests).toHaveLength(1);
  const manifest = manifests[0] as Manifest;
  expect(manifest.kind).toBe(kind);
  return manifest;
}

const deployment = loadOne('deployment.yaml', 'Deployment');
const service = loadOne('service.yaml', 'Service');
const serviceMonitor = loadOne('servicemonitor.yaml', 'ServiceMonitor');
const secret = loadOne('secret.example.yaml', 'Secret');
const kustomization = loadOne('kustomization.yaml', 'Kustomization');

const pod = deployment.spec.template.spec as Manifest;
const container = (pod.containers as Manifest[])[0] as Manifest;
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };

/** Reads the numeric USER of the image's last stage, such as 65532:65532. */
function imageUser(): { uid: number; gid: number } {
  const users = [...readFileSync(path.join(root, 'Dockerfile'), 'utf8').matchAll(/^USER\s+(\d+):(\d+)\s*$/gm)];
  const last = users.at(-1);
  if (last === undefined) throw new Error('the Dockerfile has no numeric USER uid:gid');
  return { uid: Number(last[1]), gid: Number(last[2]) };
}

/** Converts a Kubernetes quantity such as 500m, 2, 128Mi or 1G to a number of base units. */
function quantity(value: string | number): number {
  const text = String(value);
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?$/.exec(text);
  if (match === null) throw new Error(`invalid quantity ${text}`);
  const factors: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  return Number(match[1]) * (factors[match[2] ?? ''] ?? 1);
}

/** Converts a Prometheus duration such as 60s or 1m to seconds. */
function seconds(duration: string): number {
  const match = /^(\d+)(s|m)$/.exec(duration);
  if (match === null) throw new Error(`unsupported duration ${duration}`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

function containerPort(name: string): number | undefined {
  return (container.ports as Manifest[]).find((port) => port.name === name)?.containerPort as number | undefined;
}

describe('Kubernetes deployment', () => {
  it('runs one replica without overlap', () => {
    expect(deployment.apiVersion).toBe('apps/v1');
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe('Recreate');
  });

  it('selects its own pods', () => {
    const selector = deployment.spec.selector.matchLabels as Record<string, string>;

    expect(Object.keys(selector).length).toBeGreaterThan(0);
    expect(deployment.spec.template.metadata.labels).toMatchObject(selector);
  });

  it('pins the image to the package version', () => {
    expect(container.image).toBe(`${manifest.name}:${manifest.version}`);
  });

  it('sets resource requests and limits', () => {
    const { requests, limits } = container.resources as { requests: Manifest; limits: Manifest };

    for (const resource of ['cpu', 'memory']) {
      expect(requests[resource], `requests.${resource}`).toBeDefined();
      expect(limits[resource], `limits.${resource}`).toBeDefined();
      expect(quantity(requests[resource])).toBeLessThanOrEqual(quantity(limits[resource]));
    }
  });

  it.each([
    ['livenessProbe', '/-/healthy'],
    ['readinessProbe', '/-/ready'],
  ])('probes %s at %s on 10119', (probe, probePath) => {
    const httpGet = container[probe]?.httpGet as Manifest;

    expect(httpGet.path).toBe(probePath);
    const port = typeof httpGet.port === 'string' ? containerPort(httpGet.port) : httpGet.port;
    expect(port).toBe(10119);
    expect(httpGet.scheme ?? 'HTTP').toBe('HTTP');
  });

  it('runs as the numeric user of the image', () => {
    const { uid, gid } = imageUser();

    for (const context of [pod.securityContext, container.securityContext] as Manifest[]) {
      expect(context.runAsNonRoot).toBe(true);
      expect(context.runAsUser).toBe(uid);
      expect(context.runAsGroup).toBe(gid);
      expect(context.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    }
    expect(pod.securityContext.fsGroup).toBe(gid);
  });

  it('locks down the container', () => {
    const context = container.securityContext as Manifest;

    expect(context.allowPrivilegeEscalation).toBe(false);
    expect(context.readOnlyRootFilesystem).toBe(true);
    expect(context.privileged ?? false).toBe(false);
    expect(context.capabilities.drop).toEqual(['ALL']);
    expect(context.capabilities.add).toBeUndefined();
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.hostNetwork ?? false).toBe(false);
  });

  it('reads the API key from the mounted Secret', () => {
    const env = container.env as { name: string; value?: string; valueFrom?: unknown }[];
    const keyFile = env.find((variable) => variable.name === 'NGROK_API_KEY_FILE')?.value;
    expect(keyFile).toBe('/etc/ngrok-sessions-exporter/api-key');
    expect(env.some((variable) => variable.name === 'NGROK_API_KEY')).toBe(false);

    const mount = (container.volumeMounts as Manifest[]).find((candidate) => keyFile?.startsWith(`${candidate.mountPath}/`));
    expect(mount?.readOnly).toBe(true);
    const volume = (pod.volumes as Manifest[]).find((candidate) => candidate.name === mount?.name);
    expect(volume?.secret?.secretName).toBe(secret.metadata.name);

    const item = (volume?.secret?.items as Manifest[]).find((candidate) => path.posix.join(mount?.mountPath as string, candidate.path as string) === keyFile);
    expect(item).toBeDefined();
    expect(Object.keys(secret.stringData as Manifest)).toContain(item?.key);
    // 0440: the owner and the fsGroup may read the key, others may not.
    expect(volume?.secret?.defaultMode).toBe(0o440);
  });

  it('gives the read-only root a writable /tmp', () => {
    const mount = (container.volumeMounts as Manifest[]).find((candidate) => candidate.mountPath === '/tmp');
    const volume = (pod.volumes as Manifest[]).find((candidate) => candidate.name === mount?.name);

    expect(volume?.emptyDir).toBeDefined();
  });
});

describe('Kubernetes service and ServiceMonitor', () => {
  const servicePort = (service.spec.ports as Manifest[])[0] as Manifest;

  it('routes the service port to the container', () => {
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(servicePort.port).toBe(10119);
    expect(containerPort(servicePort.targetPort as string)).toBe(10119);
  });

  it('scrapes /metrics every 60s', () => {
    expect(serviceMonitor.apiVersion).toBe('monitoring.coreos.com/v1');
    const endpoints = serviceMonitor.spec.endpoints as Manifest[];
    expect(endpoints).toHaveLength(1);
    const endpoint = endpoints[0] as Manifest;

    expect(endpoint.port).toBe(servicePort.name);
    expect(endpoint.path).toBe('/metrics');
    expect(endpoint.interval).toBe('60s');
  });

  it('times out a bit before the interval', () => {
    const endpoint = (serviceMonitor.spec.endpoints as Manifest[])[0] as Manifest;
    const timeout = seconds(endpoint.scrapeTimeout as string);
    const interval = seconds(endpoint.interval as string);

    expect(timeout).toBeLessThan(interval);
    expect(timeout).toBeGreaterThanOrEqual(interval * 0.75);
  });

  it('selects the service', () => {
    expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels as Record<string, string>);
  });
});

describe('Kubernetes kustomization', () => {
  it('lists every manifest except the Secret example', () => {
    const files = readdirSync(folder).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml' && file !== 'secret.example.yaml');

    expect([...(kustomization.resources as string[])].sort()).toEqual(files.sort());
  });

  it('keeps a real key out of the example', () => {
    expect(secret.stringData['api-key']).toMatch(/^REPLACE_WITH_/);
  });
});

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { hasModel, strictOpenApiProblems } from '../helpers/kube-openapi.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

interface Manifest {
  readonly file: string;
  readonly object: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? yamlFiles(join(dir, entry.name)) : entry.name.endsWith('.yaml') ? [join(dir, entry.name)] : []);
}

const manifests: Manifest[] = yamlFiles('deploy').flatMap((file) =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    expect(doc.errors, file).toEqual([]);
    return { file, object: doc.toJS() as Manifest['object'] };
  }));

/** The parts of the example Deployment the tests read or break. */
interface DeploymentShape {
  metadata: { namespace: string };
  spec: { replicas: unknown; template: { spec: { serviceAccountName: string; containers: Record<string, unknown>[] } } };
}

const label = (m: Manifest) => `${m.file}: ${m.object.kind} ${m.object.metadata.namespace ?? ''}/${m.object.metadata.name}`;

/** The kubernetes-models class for a manifest (schema validation: required fields, formats). */
async function modelFor(apiVersion: string, kind: string): Promise<new (data: unknown) => { validate(): void }> {
  const module = (await import(apiVersion === 'v1' ? 'kubernetes-models/v1' : `kubernetes-models/${apiVersion}`)) as Record<string, unknown>;
  return module[kind] as new (data: unknown) => { validate(): void };
}

function rulesOf(name: string): { apiGroups: string[]; resources: string[]; verbs: string[] }[] {
  const role = manifests.find((m) => m.object.kind === 'ClusterRole' && m.object.metadata.name === name);
  expect(role, `ClusterRole ${name}`).toBeDefined();
  return role!.object.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
}

function grants(rules: ReturnType<typeof rulesOf>, group: string, resource: string): string[] {
  return rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs);
}

describe('deploy/ manifests', () => {
  it('finds the manifests', () => {
    expect(manifests.map((m) => m.object.kind)).toEqual(
      expect.arrayContaining(['ServiceAccount', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'Deployment', 'Service', 'ConfigMap', 'CustomResourceDefinition']));
  });

  it.each(manifests.map((m) => [label(m), m] as const))('%s conforms to the Kubernetes OpenAPI schema, strictly', async (_, m) => {
    expect(hasModel(m.object.apiVersion, m.object.kind), `a client model for ${m.object.apiVersion} ${m.object.kind}`).toBe(true);
    expect(strictOpenApiProblems(m.object, m.object.apiVersion, m.object.kind)).toEqual([]);
    const Model = await modelFor(m.object.apiVersion, m.object.kind);
    expect(() => new Model(m.object).validate()).not.toThrow();
  });

  it('the strict check catches what kubectl --validate=strict would refuse', () => {
    const deployment = manifests.find((m) => m.object.kind === 'Deployment')!.object;
    const broken = structuredClone(deployment) as unknown as DeploymentShape;
    broken.spec.template.spec.containers[0]!.port = 9080;
    broken.spec.replicas = 'two';
    expect(strictOpenApiProblems(broken, 'apps/v1', 'Deployment')).toEqual([
      'spec.replicas: expected a number, got "two"',
      'spec.template.spec.containers[0].port: unknown field in V1Container',
    ]);
  });

  it('grants read-only access (list, watch) to exactly what the mesh watches', () => {
    const config = rulesOf('sidecarless-config');
    for (const resource of ['virtualservices', 'destinationrules', 'serviceentries', 'workloadentries', 'sidecars', 'envoyfilters']) {
      expect(grants(config, 'networking.istio.io', resource), resource).toEqual(['list', 'watch']);
    }
    for (const resource of ['peerauthentications', 'authorizationpolicies']) {
      expect(grants(config, 'security.istio.io', resource), resource).toEqual(['list', 'watch']);
    }
    expect(grants(config, 'sidecarless.io', 'ratelimitpolicies')).toEqual(['list', 'watch']);
    for (const resource of ['httproutes', 'grpcroutes']) {
      expect(grants(config, 'gateway.networking.k8s.io', resource), resource).toEqual(['list', 'watch']);
    }
    const endpoints = rulesOf('sidecarless-endpoints');
    expect(grants(endpoints, 'discovery.k8s.io', 'endpointslices')).toEqual(['list', 'watch']);
    expect(grants(endpoints, '', 'services')).toEqual(['list', 'watch']);
    expect(grants(endpoints, '', 'pods')).toEqual(['list', 'watch']);
    expect(grants(rulesOf('sidecarless-nodes'), '', 'nodes')).toEqual(['list', 'watch']);
    const verbs = manifests.filter((m) => m.object.kind === 'ClusterRole' || m.object.kind === 'Role')
      .flatMap((m) => (m.object.rules as { verbs: string[] }[]).flatMap((r) => r.verbs));
    expect(new Set(verbs)).toEqual(new Set(['list', 'watch']));
  });

  it('binds the roles to the example workload\'s service account, in its namespace and the root namespace', () => {
    const deployment = manifests.find((m) => m.object.kind === 'Deployment')!.object as unknown as DeploymentShape;
    const account = deployment.spec.template.spec.serviceAccountName as string;
    const namespace = deployment.metadata.namespace as string;
    expect(manifests.some((m) => m.object.kind === 'ServiceAccount' && m.object.metadata.name === account && m.object.metadata.namespace === namespace)).toBe(true);
    const bindings = manifests.filter((m) => m.object.kind === 'RoleBinding' || m.object.kind === 'ClusterRoleBinding')
      .filter((m) => (m.object.subjects as { name: string; namespace: string }[]).some((s) => s.name === account && s.namespace === namespace))
      .map((m) => `${(m.object.roleRef as { name: string }).name}@${m.object.metadata.namespace ?? '*'}`);
    expect(bindings.sort()).toEqual([
      `sidecarless-config@${namespace}`, 'sidecarless-config@istio-system', `sidecarless-endpoints@${namespace}`, 'sidecarless-nodes@*',
    ].sort());
  });

  it('the example app\'s code in its ConfigMap is valid JavaScript', async () => {
    const config = manifests.find((m) => m.object.kind === 'ConfigMap')!.object as unknown as { data: Record<string, string> };
    const dir = await makeTempDir();
    const file = join(dir, 'server.mjs');
    writeFileSync(file, config.data['server.mjs']!);
    expect(() => execFileSync(process.execPath, ['--check', file], { stdio: 'pipe' })).not.toThrow();
    expect(JSON.parse(config.data['package.json']!).dependencies).toHaveProperty('sidecarless');
    await removeTempDir(dir);
  });
});

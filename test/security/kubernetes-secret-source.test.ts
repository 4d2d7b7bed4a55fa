import { once } from 'node:events';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import type { CertificateBundle } from '../../src/security/certificate-bundle.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import type { CertificateError } from '../../src/security/errors.js';
import { SecurityOptionError } from '../../src/security/errors.js';
import { KubernetesSecretSource } from '../../src/security/kubernetes-secret-source.js';
import { WorkloadCertificates } from '../../src/security/workload-certificates.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { CORE_RESOURCES, FakeKubeApi, ISTIO_RESOURCES } from '../helpers/fake-kube-api.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

function tlsSecret(name: string, issued: IssuedCertificate, overrides: Record<string, string> = {}): FakeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'shop' },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(issued.chainPem), 'tls.key': b64(issued.keyPem), 'ca.crt': b64(issued.rootPem), ...overrides },
  };
}

describe('certificates from a Kubernetes Secret read through the API (credentialName)', () => {
  const ca = DevCa.create();
  let api: FakeKubeApi;
  let dir: string;
  let watcher: KubeApiWatcher | undefined;
  let certificates: WorkloadCertificates | undefined;
  let mesh: Mesh | undefined;

  beforeEach(async () => {
    api = await FakeKubeApi.start({
      resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES, { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true }],
    });
    dir = await makeTempDir();
  });
  afterEach(async () => {
    certificates?.close();
    certificates = undefined;
    await mesh?.close();
    mesh = undefined;
    await watcher?.close();
    watcher = undefined;
    await api.close();
    await removeTempDir(dir);
  });

  async function open(name: string): Promise<WorkloadCertificates> {
    watcher = await KubeApiWatcher.connect({ kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } });
    certificates = new WorkloadCertificates(new KubernetesSecretSource(watcher, { name, namespace: 'shop' }), { debounceMs: 10 });
    await certificates.start();
    return certificates;
  }

  it('reads a kubernetes.io/tls Secret and rotates when it is updated; a bad update is refused', async () => {
    const v1 = ca.issue({ namespace: 'shop', serviceAccount: 'v1' });
    api.create(tlsSecret('reviews-cert', v1));
    const c = await open('reviews-cert');
    expect(c.lastError).toBeUndefined();
    expect(c.current?.source).toBe('secret:shop/reviews-cert');
    expect(c.current?.identity?.serviceAccount).toBe('v1');

    const v2 = ca.issue({ namespace: 'shop', serviceAccount: 'v2' });
    const rotated = once(c, 'rotated');
    api.update(tlsSecret('reviews-cert', v2));
    expect(((await rotated) as [CertificateBundle])[0].fingerprint).toBe(v2.certificate.fingerprint256);

    const rejected = once(c, 'rejected');
    api.update(tlsSecret('reviews-cert', ca.issue({ serviceAccount: 'v3' }), { 'tls.key': b64(v1.keyPem) }));
    const [error] = (await rejected) as [CertificateError];
    expect(error.problem).toBe('key-mismatch');
    expect(error.file).toBe('Secret shop/reviews-cert key tls.key');
    expect(c.current?.identity?.serviceAccount).toBe('v2');
  });

  it("reads Istio's generic format with the roots in the <name>-cacert Secret", async () => {
    const issued = ca.issue({ serviceAccount: 'generic' });
    api.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'generic', namespace: 'shop' },
      data: { cert: b64(issued.chainPem), key: b64(issued.keyPem) },
    });
    api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'generic-cacert', namespace: 'shop' }, data: { cacert: b64(issued.rootPem) } });
    const c = await open('generic');
    expect(c.lastError).toBeUndefined();
    expect(c.current?.files).toEqual({
      chain: 'Secret shop/generic key cert',
      key: 'Secret shop/generic key key',
      roots: 'Secret shop/generic-cacert key cacert',
    });
  });

  it('names the missing Secret or key', async () => {
    const c = await open('absent');
    expect(c.lastError?.problem).toBe('missing');
    expect(c.lastError?.message).toBe('Secret shop/absent: no such Secret');
    const issued = ca.issue();
    const loaded = once(c, 'rejected');
    api.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'absent', namespace: 'shop' },
      data: { 'tls.crt': b64(issued.chainPem), 'tls.key': b64(issued.keyPem) },
    });
    const [error] = (await loaded) as [CertificateError];
    expect(error.message).toBe('Secret shop/absent key ca.crt (or absent-cacert): no such key (the Secret has tls.crt, tls.key)');
  });

  it('is chosen by createMesh({ certificates: { secret } }) with Kubernetes discovery, and refused without it', async () => {
    api.create(tlsSecret('workload', ca.issue({ namespace: 'shop', serviceAccount: 'api' })));
    mesh = await createMesh({
      namespace: 'shop',
      discovery: { kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), endpoints: false },
      dns: false,
      certificates: { secret: { name: 'workload' } },
    });
    expect(mesh.certificates?.current?.identity?.uri).toBe('spiffe://cluster.local/ns/shop/sa/api');
    await expect(createMesh({ dns: false, certificates: { secret: { name: 'workload' } } })).rejects.toThrow(SecurityOptionError);
  });
});

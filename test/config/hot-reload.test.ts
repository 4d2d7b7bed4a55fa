import { mkdtemp, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mesh, MeshConfigError } from '../../src/index.js';
import type { Snapshot } from '../../src/inspect/public.js';
import { createMesh } from '../../src/index.js';
import { explain } from '../helpers/mesh-from-yaml.js';

const route = (dest: string, timeout = '1s') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: ${dest} }
    timeout: ${timeout}
`;

let dir: string;
let mesh: Mesh | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sidecarless-reload-'));
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await rm(dir, { recursive: true, force: true });
});

const nextSnapshot = (m: Mesh) => new Promise<Snapshot>((resolve) => m.once('snapshot', resolve));
const nextRejection = (m: Mesh) => new Promise<MeshConfigError>((resolve) => m.once('configRejected', resolve));
const destinationOf = (m: Mesh) => explain(m, 'GET', 'http://reviews/').destinations[0]?.host;

describe('hot reload', () => {
  it('applies an edited file', async () => {
    await writeFile(join(dir, 'reviews.yaml'), route('v1'));
    mesh = await createMesh({ namespace: 'shop', config: [dir] });
    expect(destinationOf(mesh)).toBe('v1.shop.svc.cluster.local');
    const changed = nextSnapshot(mesh);
    await writeFile(join(dir, 'reviews.yaml'), route('v2'));
    const snapshot = await changed;
    expect(snapshot.version).toBe(2);
    expect(destinationOf(mesh)).toBe('v2.shop.svc.cluster.local');
  });

  it('rejects an invalid change whole and keeps serving the last good snapshot', async () => {
    await writeFile(join(dir, 'reviews.yaml'), route('v1'));
    await writeFile(join(dir, 'other.yaml'), route('x').replace('name: reviews', 'name: other').replace('[reviews]', '[other]'));
    mesh = await createMesh({ namespace: 'shop', config: [dir] });
    const rejected = nextRejection(mesh);
    // One good edit and one bad edit land together: neither may apply.
    await writeFile(join(dir, 'other.yaml'), route('y', '5 seconds').replace('name: reviews', 'name: other').replace('[reviews]', '[other]'));
    const error = await rejected;
    expect(error.code).toBe('ERR_MESH_CONFIG');
    expect(error.message).toContain('snapshot 1 keeps serving');
    expect(error.message).toContain('other.yaml');
    expect(error.message).toContain('spec.http[0].timeout');
    expect(mesh.snapshot.version).toBe(1);
    expect(explain(mesh, 'GET', 'http://other/').destinations[0]?.host).toBe('x.shop.svc.cluster.local');

    const fixed = nextSnapshot(mesh);
    await writeFile(join(dir, 'other.yaml'), route('z').replace('name: reviews', 'name: other').replace('[reviews]', '[other]'));
    await fixed;
    expect(explain(mesh, 'GET', 'http://other/').destinations[0]?.host).toBe('z.shop.svc.cluster.local');
  });

  it('follows a Kubernetes ConfigMap volume ..data symlink swap', async () => {
    const first = join(dir, '..2026_11_22_10_00_00.000000001');
    await mkdir(first);
    await writeFile(join(first, 'reviews.yaml'), route('v1'));
    await symlink('..2026_11_22_10_00_00.000000001', join(dir, '..data'));
    await symlink('..data/reviews.yaml', join(dir, 'reviews.yaml'));
    mesh = await createMesh({ namespace: 'shop', config: [dir] });
    expect(destinationOf(mesh)).toBe('v1.shop.svc.cluster.local');

    const changed = nextSnapshot(mesh);
    const second = join(dir, '..2026_11_22_10_05_00.000000002');
    await mkdir(second);
    await writeFile(join(second, 'reviews.yaml'), route('v2'));
    await symlink('..2026_11_22_10_05_00.000000002', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(first, { recursive: true });
    await changed;
    expect(destinationOf(mesh)).toBe('v2.shop.svc.cluster.local');
    expect(mesh.snapshot.resources).toHaveLength(1);
  });

  it('refuses to start on invalid configuration, naming file, resource and field', async () => {
    await writeFile(join(dir, 'reviews.yaml'), route('v1').replace('timeout', 'timout'));
    const error = (await createMesh({ namespace: 'shop', config: [dir], watch: false }).catch((e: unknown) => e)) as MeshConfigError;
    expect(error.code).toBe('ERR_MESH_CONFIG');
    const issue = error.issues.find((i) => i.severity === 'error');
    expect(issue?.location?.file).toContain('reviews.yaml');
    expect(issue?.location?.line).toBe(9);
    expect(issue?.resource).toEqual({ kind: 'VirtualService', namespace: 'shop', name: 'reviews' });
    expect(issue?.path).toBe('spec.http[0].timout');
    expect(issue?.message).toContain("did you mean 'timeout'");
  });
});

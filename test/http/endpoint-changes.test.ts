import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';

let pods: Pods;
let dir: string;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  dir = await mkdtemp(join(tmpdir(), 'sidecarless-endpoints-'));
});
afterAll(async () => {
  await pods.close();
  await rm(dir, { recursive: true, force: true });
});

const serviceEntry = (addresses: string[], weight = 'ROUND_ROBIN') => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: inventory, namespace: shop }
spec:
  hosts: [inventory.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints:
${addresses.map((a) => `  - { address: ${a} }`).join('\n')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: inventory, namespace: shop }
spec:
  host: inventory
  trafficPolicy: { loadBalancer: { simple: ${weight} } }
`;

async function podsHit(mesh: Mesh, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await mesh.request(`http://inventory:${pods.port}/`);
    seen.add(((await res.body.json()) as PodReply).pod);
  }
  return seen;
}

describe('endpoint changes', () => {
  it('a changed ServiceEntry moves traffic to the new endpoint set without failing a request', async () => {
    const file = join(dir, 'inventory.yaml');
    await writeFile(file, serviceEntry(['127.0.0.2', '127.0.0.3']));
    const mesh = await createMesh({ namespace: 'shop', config: [dir] });
    try {
      expect([...(await podsHit(mesh, 20))].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
      const changed = new Promise((resolve) => mesh.once('snapshot', resolve));
      await writeFile(file, serviceEntry(['127.0.0.3', '127.0.0.4']));
      await changed;
      expect([...(await podsHit(mesh, 20))].sort()).toEqual(['127.0.0.3', '127.0.0.4']);
    } finally {
      await mesh.close();
    }
  });

  it('a rejected change keeps the last good endpoints serving', async () => {
    const file = join(dir, 'inventory.yaml');
    await writeFile(file, serviceEntry(['127.0.0.2']));
    const mesh = await createMesh({ namespace: 'shop', config: [dir] });
    try {
      const rejected = new Promise((resolve) => mesh.once('configRejected', resolve));
      await writeFile(file, serviceEntry(['127.0.0.4'], 'FASTEST'));
      await rejected;
      expect([...(await podsHit(mesh, 10))]).toEqual(['127.0.0.2']);
    } finally {
      await mesh.close();
    }
  });
});

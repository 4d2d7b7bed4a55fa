import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';

// Four pods: two in zone a, two in zone b of region r1.
let pods: Pods;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
});
afterAll(() => pods.close());

const config = (trafficPolicy: string, extra = '', weights = [1, 1, 1, 1]) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: catalog, namespace: shop }
spec:
  hosts: [catalog.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, locality: r1/a, weight: ${weights[0]} }
  - { address: 127.0.0.3, locality: r1/a, weight: ${weights[1]} }
  - { address: 127.0.0.4, locality: r1/b, weight: ${weights[2]} }
  - { address: 127.0.0.5, locality: r1/b, weight: ${weights[3]} }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: catalog
  namespace: shop
${extra}
spec:
  host: catalog
  trafficPolicy:
${trafficPolicy}
`;

async function spread(mesh: Mesh, n: number, headers: Record<string, string> = {}, concurrency = 1): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const res = await mesh.request(`http://catalog:${pods.port}/`, { headers });
      const reply = (await res.body.json()) as PodReply;
      counts.set(reply.pod, (counts.get(reply.pod) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

describe('load balancing from DestinationRule', () => {
  it('ROUND_ROBIN honours endpoint weights (3:1:1:1 within ±2 points over 6,000 requests)', async () => {
    const mesh = await meshFromYaml(config('    loadBalancer: { simple: ROUND_ROBIN }', '', [3, 1, 1, 1]), { namespace: 'shop', random: seededRandom(1) });
    try {
      const counts = await spread(mesh, 6_000);
      // 3:1:1:1 → 50%, 16.7%, 16.7%, 16.7%
      expect(Math.abs((counts.get('127.0.0.2') ?? 0) / 60 - 50)).toBeLessThanOrEqual(2);
      expect(Math.abs((counts.get('127.0.0.3') ?? 0) / 60 - 16.7)).toBeLessThanOrEqual(2);
    } finally {
      await mesh.close();
    }
  });

  it('consistentHash on a header keeps each key on one pod', async () => {
    const mesh = await meshFromYaml(config('    loadBalancer: { consistentHash: { httpHeaderName: x-user } }'), { namespace: 'shop' });
    try {
      const homes = new Set<string>();
      for (const user of ['ann', 'bob', 'cid', 'dee', 'eve', 'fay', 'gus', 'hal']) {
        const counts = await spread(mesh, 25, { 'x-user': user });
        expect(counts.size, user).toBe(1);
        homes.add([...counts.keys()][0]!);
      }
      expect(homes.size).toBeGreaterThan(1);
    } finally {
      await mesh.close();
    }
  });

  it('locality: with outlierDetection set, traffic stays in the caller zone while it is healthy', async () => {
    const mesh = await meshFromYaml(config('    loadBalancer: { simple: ROUND_ROBIN }\n    outlierDetection: { consecutive5xxErrors: 5 }'), {
      namespace: 'shop',
      locality: 'r1/b',
    });
    try {
      const counts = await spread(mesh, 400);
      expect([...counts.keys()].sort()).toEqual(['127.0.0.4', '127.0.0.5']);
    } finally {
      await mesh.close();
    }
  });

  it('locality: without outlierDetection, Istio does not prioritise the local zone', async () => {
    const mesh = await meshFromYaml(config('    loadBalancer: { simple: ROUND_ROBIN }'), { namespace: 'shop', locality: 'r1/b' });
    try {
      const counts = await spread(mesh, 400);
      expect(counts.size).toBe(4);
    } finally {
      await mesh.close();
    }
  });

  it('locality distribute splits traffic between zones as configured (80/20 within ±3 points)', async () => {
    const policy = `    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        distribute:
        - from: r1/b/*
          to: { "r1/a/*": 80, "r1/b/*": 20 }`;
    const mesh = await meshFromYaml(config(policy), { namespace: 'shop', locality: 'r1/b', random: seededRandom(7) });
    try {
      const counts = await spread(mesh, 4_000);
      const zoneA = (counts.get('127.0.0.2') ?? 0) + (counts.get('127.0.0.3') ?? 0);
      expect(Math.abs(zoneA / 40 - 80)).toBeLessThanOrEqual(3);
    } finally {
      await mesh.close();
    }
  });

  it('PEAK_EWMA, selected by annotation over the Istio field, moves traffic away from a slow pod', async () => {
    // The Istio field says ROUND_ROBIN (what a sidecar would do: 25% to the slow pod); the
    // annotation selects our PEAK_EWMA instead.
    const mesh = await meshFromYaml(config('    loadBalancer: { simple: ROUND_ROBIN }', '  annotations: { sidecarless.io/load-balancer: PEAK_EWMA }'), {
      namespace: 'shop',
      random: seededRandom(3),
    });
    // 127.0.0.2 answers after 100 ms; the others at once.
    pods.behave = (req, res, pod) => {
      if (pod !== '127.0.0.2') return false;
      req.resume();
      const timer = setTimeout(() => res.end(JSON.stringify({ pod })), 100);
      res.on('close', () => clearTimeout(timer));
      return true;
    };
    try {
      const counts = await spread(mesh, 600, {}, 8);
      // Even spread would give the slow pod 25%; PEAK_EWMA keeps it well below.
      expect((counts.get('127.0.0.2') ?? 0) / 600).toBeLessThan(0.1);
    } finally {
      pods.behave = undefined;
      await mesh.close();
    }
  });
});

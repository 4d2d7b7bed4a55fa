// Istio task "Mirroring": https://istio.io/latest/docs/tasks/traffic-management/mirroring/
// The DestinationRule and VirtualServices are the page's, verbatim; httpbin v1 and v2 are loopback pods.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { call } from './bookinfo.js';

const V1 = '127.0.0.2';
const V2 = '127.0.0.3';
const service = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: httpbin, namespace: default }
spec:
  hosts: [httpbin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: ${V1}, labels: { app: httpbin, version: v1 } }
  - { address: ${V2}, labels: { app: httpbin, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
`;
const ALL_V1 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
`;
const MIRROR = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
    mirror:
      host: httpbin
      subset: v2
    mirrorPercentage:
      value: 100.0
`;

let pods: Pods;
let log: RequestLog;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start([V1, V2]);
  log = new RequestLog(pods);
});
afterEach(async () => {
  log.take = undefined;
  log.clear();
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const url = () => `http://httpbin:${pods.port}/headers`;

describe('Istio task: Mirroring', () => {
  it('default route: access log entries on v1 and none on v2', async () => {
    mesh = await meshFromYaml(service(pods.port) + ALL_V1, { namespace: 'default' });
    for (let i = 0; i < 10; i++) expect((await call(mesh, url())).reply?.pod).toBe(V1);
    expect(log.count((s) => s.pod === V2)).toBe(0);
  });

  it('mirror to v2: v1 answers, v2 receives a copy of every request with its Host appended with -shadow', async () => {
    mesh = await meshFromYaml(service(pods.port) + MIRROR, { namespace: 'default' });
    for (let i = 0; i < 10; i++) {
      const res = await call(mesh, `${url()}?i=${i}`);
      expect(res.status).toBe(200);
      expect(res.reply?.pod).toBe(V1);
      expect(res.reply?.host).toBe(`httpbin:${pods.port}`);
    }
    await log.until(() => log.count((s) => s.pod === V2) === 10);
    const shadows = log.seen.filter((s) => s.pod === V2);
    for (const s of shadows) expect(s.host).toBe(`httpbin-shadow:${pods.port}`);
    expect(shadows.map((s) => s.path).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `/headers?i=${i}`).sort());
  });

  it('mirrored requests are fire and forget: v2 failing or never answering does not change what the caller gets', async () => {
    mesh = await meshFromYaml(service(pods.port) + MIRROR, { namespace: 'default' });
    log.take = (seen) => seen.pod === V2; // v2 never answers
    for (let i = 0; i < 5; i++) expect((await call(mesh, url())).reply?.pod).toBe(V1);
    await log.until(() => log.count((s) => s.pod === V2) === 5);
    for (const s of log.seen) if (!s.res.headersSent) s.res.writeHead(500).end('v2 broken');
  });

  it('without mirrorPercentage every request is mirrored (the page: "If this field is absent, all traffic will be mirrored")', async () => {
    const noPercentage = MIRROR.replace('    mirrorPercentage:\n      value: 100.0\n', '');
    expect(noPercentage).not.toContain('mirrorPercentage');
    mesh = await meshFromYaml(service(pods.port) + noPercentage, { namespace: 'default', random: seededRandom(1) });
    for (let i = 0; i < 20; i++) await call(mesh, url());
    await log.until(() => log.count((s) => s.pod === V2) === 20);
    expect(log.count((s) => s.pod === V2)).toBe(20);
  });

  it('mirrorPercentage 50 mirrors about half (±5 points over 1,000 requests)', async () => {
    const half = MIRROR.replace('value: 100.0', 'value: 50.0');
    mesh = await meshFromYaml(service(pods.port) + half, { namespace: 'default', random: seededRandom(2) });
    for (let i = 0; i < 1_000; i++) await call(mesh, url());
    // Mirrors are sent after the primary; wait for the primaries' count to settle the mirrored count.
    const primaries = log.count((s) => s.pod === V1);
    expect(primaries).toBe(1_000);
    const mirrored = () => log.count((s) => s.pod === V2);
    await log.until(() => mirrored() >= 450);
    expect(Math.abs(mirrored() / 10 - 50)).toBeLessThanOrEqual(5);
  }, 60_000);
});

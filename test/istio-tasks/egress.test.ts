// Istio task "Accessing External Services":
// https://istio.io/latest/docs/tasks/traffic-management/egress/egress-control/
// ALLOW_ANY passthrough, then REGISTRY_ONLY (the task's meshConfig.outboundTrafficPolicy, here the
// mesh option of the same name), the httpbin-ext ServiceEntry (resolution: DNS) and the
// VirtualService with a 3s timeout, verbatim but for port 80, which is the pods' port here.
// httpbin.org resolves through a real dnsmasq to a loopback pod.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { UnknownHostError } from '../../src/index.js';
import { dnsOptions } from '../helpers/dns-mesh.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { TestClock } from '../helpers/test-clock.js';
import { call } from './bookinfo.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

const HTTPBIN_ORG = '127.0.0.2';
const OTHER_EXTERNAL = '127.0.0.3';

const SERVICE_ENTRY = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: ${port}
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
`;
const VIRTUAL_SERVICE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin-ext
spec:
  hosts:
    - httpbin.org
  http:
  - timeout: 3s
    route:
      - destination:
          host: httpbin.org
        weight: 100
`;

let pods: Pods;
let log: RequestLog;
let dns: Dnsmasq;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start([HTTPBIN_ORG, OTHER_EXTERNAL]);
  log = new RequestLog(pods);
  dns = await Dnsmasq.start({ hosts: { 'httpbin.org': [HTTPBIN_ORG] } });
});
afterEach(async () => {
  log.take = undefined;
  for (const s of log.seen) if (!s.res.headersSent) s.res.end();
  log.clear();
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await dns?.close();
  await pods?.close();
});

describe('Istio task: Accessing External Services', () => {
  it('ALLOW_ANY (the default): a destination outside the registry is passed through', async () => {
    mesh = await meshFromYaml('', { namespace: 'default', dns: dnsOptions(dns) });
    const res = await call(mesh, `http://${OTHER_EXTERNAL}:${pods.port}/`);
    expect(res.reply?.pod).toBe(OTHER_EXTERNAL);
  });

  it('REGISTRY_ONLY: a destination outside the registry is blocked and never reached', async () => {
    mesh = await meshFromYaml('', { namespace: 'default', dns: dnsOptions(dns), outboundTrafficPolicy: 'REGISTRY_ONLY' });
    // Istio answers 502 from its BlackHoleCluster; sidecarless rejects the call (docs/decisions.md).
    await expect(call(mesh, `http://${OTHER_EXTERNAL}:${pods.port}/`)).rejects.toBeInstanceOf(UnknownHostError);
    await expect(call(mesh, `http://httpbin.org:${pods.port}/headers`)).rejects.toBeInstanceOf(UnknownHostError);
    expect(log.seen).toHaveLength(0);
  });

  it('REGISTRY_ONLY with the httpbin-ext ServiceEntry: httpbin.org is reached through DNS; others stay blocked', async () => {
    mesh = await meshFromYaml(SERVICE_ENTRY(pods.port), { namespace: 'default', dns: dnsOptions(dns), outboundTrafficPolicy: 'REGISTRY_ONLY' });
    const res = await call(mesh, `http://httpbin.org:${pods.port}/headers`);
    expect(res.status).toBe(200);
    expect(res.reply?.pod).toBe(HTTPBIN_ORG);
    expect(res.reply?.host).toBe(`httpbin.org:${pods.port}`);
    await expect(call(mesh, `http://${OTHER_EXTERNAL}:${pods.port}/`)).rejects.toBeInstanceOf(UnknownHostError);
  });

  it('the VirtualService timeout of 3s applies to the external service: /delay/5 answers 504 upstream request timeout', async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(SERVICE_ENTRY(pods.port) + '---\n' + VIRTUAL_SERVICE, {
      namespace: 'default',
      dns: dnsOptions(dns),
      outboundTrafficPolicy: 'REGISTRY_ONLY',
      clock,
    });
    log.take = (seen) => seen.path.startsWith('/delay/'); // httpbin's /delay/5 answers after 5s
    const reply = call(mesh, `http://httpbin.org:${pods.port}/delay/5`);
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext((t) => t.kind === 'request')?.delayMs).toBe(3_000);
    const res = await reply;
    expect(res.status).toBe(504);
    expect(res.text).toBe('upstream request timeout');
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import { DnsOptionError } from '../../src/index.js';
import type { DnsLookupFailure, Mesh, MeshDnsOptions, MeshOptions } from '../../src/index.js';
import { countPods, dnsOptions, get, nextEvent } from '../helpers/dns-mesh.js';
import type { DnsmasqOptions, DnsmasqRecords, DnsmasqSrv } from '../helpers/dnsmasq.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

// The pods listen on a random port (the headless service's target port); the service port is
// 9080, where nothing listens: a request that reaches a pod went to the port SRV named.
const SERVICE_PORT = 9080;
const REVIEWS = 'reviews.shop.svc.cluster.local';
const SRV_NAME = `_http-web._tcp.${REVIEWS}`;

let pods: Pods;
let targetPort: number;
const servers: Dnsmasq[] = [];
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  targetPort = pods.port;
});
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await pods.close();
});

async function dnsmasq(records: DnsmasqRecords, options: DnsmasqOptions = { ttl: 1 }): Promise<Dnsmasq> {
  const server = await Dnsmasq.start(records, options);
  servers.push(server);
  return server;
}

async function mesh(yaml: string, server: Dnsmasq, options: Omit<MeshOptions, 'config'> & { dnsExtra?: MeshDnsOptions } = {}): Promise<Mesh> {
  const { dnsExtra, ...rest } = options;
  const m = await meshFromYaml(yaml, { namespace: 'shop', random: seededRandom(7), dns: dnsOptions(server, dnsExtra), ...rest });
  meshes.push(m);
  return m;
}

/** Pod `name` of the headless service, at `address`. */
const podName = (name: string): string => `${name}.${REVIEWS}`;

/** One SRV record per pod, as Kubernetes DNS publishes them for a headless service's named port. */
function headlessSrv(podsByName: Readonly<Record<string, number>>, port = targetPort): DnsmasqSrv[] {
  return Object.entries(podsByName).map(([name, weight]) => ({ name: SRV_NAME, target: podName(name), port, weight }));
}

/** A headless `reviews` with pods a (127.0.0.2) and b (127.0.0.3); its A records list both at the service name. */
const headless = (): DnsmasqRecords => ({
  hosts: {
    [REVIEWS]: ['127.0.0.2', '127.0.0.3'],
    [podName('a')]: ['127.0.0.2'],
    [podName('b')]: ['127.0.0.3'],
    [podName('c')]: ['127.0.0.4'],
    [podName('d')]: ['127.0.0.5'],
  },
  srv: headlessSrv({ a: 50, b: 50 }),
});

const serviceEntry = (portName = 'http-web', number = SERVICE_PORT) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${REVIEWS}]
  location: MESH_INTERNAL
  resolution: DNS
  ports: [{ number: ${number}, name: ${portName}, protocol: HTTP }]
`;

const ROUND_ROBIN = `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: ${REVIEWS}
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
`;

const URL_ = `http://${REVIEWS}:${SERVICE_PORT}/`;

describe('SRV records for named ports', () => {
  it("reaches a headless service's pods on the target port SRV names, keeping the service's Host", async () => {
    const server = await dnsmasq(headless());
    const m = await mesh(serviceEntry() + ROUND_ROBIN, server);
    expect(Object.fromEntries(await countPods(m, URL_, 40))).toEqual({ '127.0.0.2': 20, '127.0.0.3': 20 });
    const { reply } = await get(m, URL_);
    expect(reply?.host).toBe(`${REVIEWS}:${SERVICE_PORT}`);
  });

  it('uses SRV for a Kubernetes name no configuration knows when dns.portNames names its port', async () => {
    const server = await dnsmasq(headless());
    const m = await mesh(ROUND_ROBIN, server, { dnsExtra: { portNames: { [`reviews.shop:${SERVICE_PORT}`]: 'http-web' } } });
    expect(Object.fromEntries(await countPods(m, `http://reviews.shop:${SERVICE_PORT}/`, 40))).toEqual({ '127.0.0.2': 20, '127.0.0.3': 20 });
    // Without the port name, the A records are used with the port asked for, where no pod listens.
    const plain = await mesh('', server);
    const outcome = await get(plain, `http://reviews.shop:${SERVICE_PORT}/`).then(
      (r) => `${r.status} ${r.text}`,
      (error: Error) => error.message,
    );
    expect(outcome).toMatch(/^503|ECONNREFUSED 127\.0\.0\.[23]:9080/);
  });

  it('balances by SRV weight (1:3 under ROUND_ROBIN)', async () => {
    const server = await dnsmasq({ ...headless(), srv: headlessSrv({ a: 10, b: 30 }) });
    const m = await mesh(serviceEntry() + ROUND_ROBIN, server);
    const counts = await countPods(m, URL_, 400);
    expect([...counts.keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(Math.abs(counts.get('127.0.0.2')! - 100)).toBeLessThanOrEqual(4);
    expect(Math.abs(counts.get('127.0.0.3')! - 300)).toBeLessThanOrEqual(4);
  });

  it('falls back to the A records with the port when the name has no SRV record for the port', async () => {
    const server = await dnsmasq(headless());
    // A port named `http` has no `_http._tcp` record: the service's A records at the service port.
    const m = await mesh(serviceEntry('http', targetPort) + ROUND_ROBIN, server);
    expect(Object.fromEntries(await countPods(m, `http://${REVIEWS}:${targetPort}/`, 20))).toEqual({ '127.0.0.2': 10, '127.0.0.3': 10 });
    const viaOption = await mesh(ROUND_ROBIN, server, { dnsExtra: { portNames: { [`reviews.shop.svc:${targetPort}`]: 'grpc' } } });
    expect([...(await countPods(viaOption, `http://reviews.shop:${targetPort}/`, 10)).keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
  });

  it('follows a change of the SRV records', async () => {
    const server = await dnsmasq(headless());
    const m = await mesh(serviceEntry() + ROUND_ROBIN, server);
    expect([...(await countPods(m, URL_, 10)).keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    const changed = nextEvent(m, 'dnsChange', (c) => c.endpoints.map((e) => e.address).join() === '127.0.0.4,127.0.0.5');
    await server.setSrv(headlessSrv({ c: 50, d: 50 }));
    const change = await changed;
    expect(change.fqdn).toBe(SRV_NAME);
    expect(change.endpoints.map((e) => e.port)).toEqual([targetPort, targetPort]);
    expect(Object.fromEntries(await countPods(m, URL_, 20))).toEqual({ '127.0.0.4': 10, '127.0.0.5': 10 });
  });

  it('keeps serving the last SRV answer when the DNS server stops', async () => {
    const server = await dnsmasq(headless());
    const m = await mesh(serviceEntry() + ROUND_ROBIN, server);
    expect([...(await countPods(m, URL_, 10)).keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    const failed = nextEvent(m, 'dnsError', (f) => f.name === REVIEWS);
    await server.stop();
    const failure: DnsLookupFailure = await failed;
    expect(failure.error.rrtype).toBe('SRV');
    expect(failure.kept.map((e) => `${e.address}:${e.port}`)).toEqual([`127.0.0.2:${targetPort}`, `127.0.0.3:${targetPort}`]);
    expect(Object.fromEntries(await countPods(m, URL_, 20))).toEqual({ '127.0.0.2': 10, '127.0.0.3': 10 });
  });

  it('answers 503 saying what DNS lacked: target addresses, or both SRV and address records', async () => {
    const server = await dnsmasq({ srv: [{ name: SRV_NAME, target: podName('gone'), port: targetPort }] });
    const m = await mesh(serviceEntry(), server);
    const noTarget = await get(m, URL_);
    expect(noTarget.status).toBe(503);
    expect(noTarget.text).toContain(`no target of the DNS SRV records of ${SRV_NAME} has an address record`);
    const nothing = await get(m, `http://ratings.shop:${SERVICE_PORT}/`);
    expect(nothing.status).toBe(503);
    expect(nothing.text).toContain('ratings.shop.svc.cluster.local (NXDOMAIN or NODATA)');
    const viaOption = await mesh('', server, { dnsExtra: { portNames: { [`ratings.shop:${SERVICE_PORT}`]: 'http' } } });
    expect((await get(viaOption, `http://ratings.shop:${SERVICE_PORT}/`)).text).toContain(
      'DNS has no SRV records for _http._tcp.ratings.shop.svc.cluster.local and no address records for ratings.shop.svc.cluster.local',
    );
  });

  it('rejects a malformed dns.portNames at createMesh, naming the entry and what was expected', async () => {
    const server = await dnsmasq({});
    await expect(mesh('', server, { dnsExtra: { portNames: { 'reviews:9080': 'http' } } })).rejects.toBeInstanceOf(DnsOptionError);
    await expect(mesh('', server, { dnsExtra: { portNames: { 'reviews:9080': 'http' } } })).rejects.toMatchObject({
      code: 'ERR_MESH_DNS_OPTION',
      message: expect.stringContaining('dns.portNames["reviews:9080"]: expected a Kubernetes service written with its namespace'),
    });
    await expect(mesh('', server, { dnsExtra: { portNames: { 'reviews.shop:9080': 'HTTP_web' } } })).rejects.toThrow(
      'dns.portNames["reviews.shop:9080"]: expected a Kubernetes Service port name',
    );
  });
});

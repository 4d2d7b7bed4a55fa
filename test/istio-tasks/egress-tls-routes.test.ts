// Istio's egress samples for TLS ports ("Accessing External Services", "Egress using Wildcard
// Hosts", the VirtualService reference's `tls` example): a ServiceEntry port with protocol TLS or
// HTTPS is routed by SNI with VirtualService `tls` routes, HTTP routes never apply to it, and an
// https:// request keeps its TLS end to end (SNI = the URL's host, the certificate checked against
// it). Real node:https "pods" on loopback addresses, certificates from a CA minted here and added
// to Node's trust store (the OS CA certificates' role), one port for every pod as a ServiceEntry's
// endpoints share one.
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshError } from '../../src/index.js';
import { TestCa } from '../helpers/certs.js';
import { failure } from '../helpers/failure.js';
import { endpoint, namespaceCollections, service, slice } from '../helpers/kube-objects.js';
import { MemoryKubeWatcher } from '../helpers/memory-kube.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { PlaintextPod, TlsPod } from '../helpers/tls-pods.js';

let dir: string;
let systemCas: string[];
let google: TlsPod;
let v1: TlsPod;
let v2: TlsPod;
let login: TlsPod;
let web: TlsPod;
let plain: PlaintextPod;
let ledger: TlsPod;
let port: number;
let mesh: Mesh | undefined;

beforeAll(async () => {
  dir = await makeTempDir();
  const ca = TestCa.create(dir);
  systemCas = getCACertificates('default');
  setDefaultCACertificates([...systemCas, ca.cert]);
  google = await TlsPod.start('127.0.0.2', { cert: ca.issue('www.googleapis.com', { dns: ['www.googleapis.com'] }) });
  port = google.port;
  v1 = await TlsPod.start('127.0.0.3', { port, cert: ca.issue('api.example.com', { dns: ['api.example.com'] }) });
  v2 = await TlsPod.start('127.0.0.4', { port, cert: ca.issue('api.example.com', { dns: ['api.example.com'] }) });
  login = await TlsPod.start('127.0.0.5', { port, cert: ca.issue('login.bookinfo.com', { dns: ['login.bookinfo.com'] }) });
  web = await TlsPod.start('127.0.0.6', { port, cert: ca.issue('*.bookinfo.com', { dns: ['*.bookinfo.com', 'a.b.bookinfo.com'] }) });
  plain = await PlaintextPod.start('127.0.0.7', port);
  ledger = await TlsPod.start('127.0.0.8', { port, cert: ca.issue('ledger', { dns: ['ledger.shop.svc.cluster.local'] }) });
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

afterAll(async () => {
  setDefaultCACertificates(systemCas);
  await Promise.all([google, v1, v2, login, web, plain, ledger].map((p) => p?.close()));
  await removeTempDir(dir);
});

async function reply(url: string): Promise<TlsPodReply> {
  const res = await mesh!.request(url);
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as TlsPodReply;
}

/** "Accessing External Services": www.googleapis.com on its TLS port, one STATIC endpoint. */
const googleapis = (protocol: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: googleapis, namespace: shop }
spec:
  hosts: [www.googleapis.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: https, protocol: ${protocol} }]
  endpoints: [{ address: 127.0.0.2 }]
`;

/** Two versions of api.example.com behind one TLS port, and the subsets that name them. */
const api = () => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: tls, protocol: TLS }]
  endpoints:
  - { address: 127.0.0.3, labels: { version: v1 } }
  - { address: 127.0.0.4, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api.example.com
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;

/**
 * "Egress using Wildcard Hosts" with the reference's `bookinfo-sni` routes: *.bookinfo.com on a TLS
 * port (resolution NONE), login.bookinfo.com's connections to one backend, every other name under
 * the wildcard to another. The wildcard route is written first: Envoy ranks server names by
 * specificity, not by order.
 */
const bookinfoSni = (tls: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bookinfo, namespace: shop }
spec:
  hosts: ["*.bookinfo.com"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{ number: ${port}, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: backends, namespace: shop }
spec:
  hosts: [login.backend.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.5 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web-backends, namespace: shop }
spec:
  hosts: [web.backend.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.6 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bookinfo-sni, namespace: shop }
spec:
  hosts: ["*.bookinfo.com"]
  tls:
${tls}`;

describe('TLS and HTTPS ports without tls routes go to the service itself', () => {
  it.each(['HTTPS', 'TLS', 'https'])(
    'protocol %s: an https:// request reaches the endpoint with SNI = the URL host, the certificate verified',
    async (protocol) => {
      mesh = await meshFromYaml(googleapis(protocol), { namespace: 'shop' });
      expect(await reply(`https://www.googleapis.com:${port}/storage/v1/b`)).toMatchObject({
        pod: '127.0.0.2',
        sni: 'www.googleapis.com',
        path: '/storage/v1/b',
        host: `www.googleapis.com:${port}`,
      });
      // Every spelling makes it a TLS port: plaintext to it is refused.
      expect(((await failure(mesh.request(`http://www.googleapis.com:${port}/`))) as MeshError).code).toBe('ERR_MESH_TLS_PORT_PLAINTEXT');
    },
  );

  it('HTTP routes of a VirtualService for the host never apply to its TLS port (no local 404, no direct response)', async () => {
    mesh = await meshFromYaml(
      `${googleapis('HTTPS')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: googleapis, namespace: shop }
spec:
  hosts: [www.googleapis.com]
  http:
  - match: [{ uri: { prefix: /only-this } }]
    directResponse: { status: 418, body: { string: from an http route } }
`,
      { namespace: 'shop' },
    );
    // Before: the http route table applied and answered 404 (no match) or 418 (match) locally.
    expect(await reply(`https://www.googleapis.com:${port}/other`)).toMatchObject({ pod: '127.0.0.2', path: '/other' });
    expect(await reply(`https://www.googleapis.com:${port}/only-this`)).toMatchObject({ pod: '127.0.0.2', path: '/only-this' });
  });

  it("the caller's x-envoy-upstream-rq-timeout-ms reaches the endpoint untouched on a TLS port (Envoy sees only encrypted bytes there)", async () => {
    mesh = await meshFromYaml(googleapis('TLS'), { namespace: 'shop' });
    const res = await mesh.request(`https://www.googleapis.com:${port}/storage`, { headers: { 'x-envoy-upstream-rq-timeout-ms': '250' } });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as TlsPodReply).rqTimeoutHeader).toBe('250');
  });

  it('a plaintext http:// request to a TLS port is refused with ERR_MESH_TLS_PORT_PLAINTEXT; nothing reaches the endpoint', async () => {
    mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: shop }
spec:
  hosts: [secure.example.com]
  resolution: STATIC
  ports: [{ number: ${port}, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.7 }]
`,
      { namespace: 'shop' },
    );
    const error = (await failure(mesh.request(`http://secure.example.com:${port}/card`, { method: 'POST', body: 'card=4111' }))) as MeshError;
    expect(error.code).toBe('ERR_MESH_TLS_PORT_PLAINTEXT');
    expect(error.name).toBe('TlsPortPlaintextError');
    expect(error.message).toContain(`secure.example.com:${port} is a TLS port: requests to it must use an https:// URL`);
    // Through fetch too (as the cause of fetch's TypeError).
    const fetchError = await failure(mesh.fetch(`http://secure.example.com:${port}/card`));
    expect((fetchError.cause as MeshError).code).toBe('ERR_MESH_TLS_PORT_PLAINTEXT');
    expect(plain.requests).toBe(0);
    expect(plain.refused).toHaveLength(0);
  });
});

describe('tls routes by SNI', () => {
  it("weighted destinations split connections by weight (within tolerance) to the subsets' endpoints, TLS end to end", async () => {
    mesh = await meshFromYaml(
      `${api()}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  tls:
  - match: [{ port: ${port}, sniHosts: [api.example.com] }]
    route:
    - { destination: { host: api.example.com, subset: v1 }, weight: 75 }
    - { destination: { host: api.example.com, subset: v2 }, weight: 25 }
`,
      { namespace: 'shop', random: seededRandom(7) },
    );
    const counts = { '127.0.0.3': 0, '127.0.0.4': 0 } as Record<string, number>;
    for (let i = 0; i < 200; i++) {
      const r = await reply(`https://api.example.com:${port}/n/${i}`);
      expect(r.sni).toBe('api.example.com');
      counts[r.pod] = (counts[r.pod] ?? 0) + 1;
    }
    expect(counts['127.0.0.3']! + counts['127.0.0.4']!).toBe(200);
    expect(counts['127.0.0.3']! / 200).toBeGreaterThan(0.65);
    expect(counts['127.0.0.3']! / 200).toBeLessThan(0.85);
  });

  it('the most specific SNI wins (exact over wildcard, whatever the order); other names under the wildcard take the wildcard route', async () => {
    mesh = await meshFromYaml(
      bookinfoSni(`  - match: [{ port: ${port}, sniHosts: ["*.bookinfo.com"] }]
    route: [{ destination: { host: web.backend.internal } }]
  - match: [{ port: ${port}, sniHosts: [login.bookinfo.com] }]
    route: [{ destination: { host: login.backend.internal } }]
`),
      { namespace: 'shop' },
    );
    expect(await reply(`https://login.bookinfo.com:${port}/login`)).toMatchObject({
      pod: '127.0.0.5',
      sni: 'login.bookinfo.com',
      host: `login.bookinfo.com:${port}`,
    });
    expect(await reply(`https://www.bookinfo.com:${port}/`)).toMatchObject({ pod: '127.0.0.6', sni: 'www.bookinfo.com' });
    expect(await reply(`https://a.b.bookinfo.com:${port}/deep`)).toMatchObject({ pod: '127.0.0.6', sni: 'a.b.bookinfo.com' });
  });

  it('an SNI no tls route matches is refused with ERR_MESH_NO_TLS_ROUTE; nothing is sent', async () => {
    mesh = await meshFromYaml(
      bookinfoSni(`  - match: [{ port: ${port}, sniHosts: [login.bookinfo.com] }]
    route: [{ destination: { host: login.backend.internal } }]
`),
      { namespace: 'shop' },
    );
    const before = web.replies.length + login.replies.length;
    const error = (await failure(mesh.request(`https://shop.bookinfo.com:${port}/`))) as MeshError & { sni?: string };
    expect(error.code).toBe('ERR_MESH_NO_TLS_ROUTE');
    expect(error.sni).toBe('shop.bookinfo.com');
    expect(error.message).toContain('no tls route of VirtualService shop/bookinfo-sni matches SNI "shop.bookinfo.com"');
    expect(web.replies.length + login.replies.length).toBe(before);
    // The name the route is for still passes.
    expect(await reply(`https://login.bookinfo.com:${port}/`)).toMatchObject({ pod: '127.0.0.5' });
  });

  it('a tls match for another port, or for other source labels, does not apply: the service itself is the destination', async () => {
    mesh = await meshFromYaml(
      `${api()}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  tls:
  - match: [{ port: 1, sniHosts: [api.example.com] }, { sniHosts: [api.example.com], sourceLabels: { app: other } }]
    route: [{ destination: { host: api.example.com, subset: v2 } }]
  - match: [{ sniHosts: [api.example.com], sourceLabels: { app: shop } }]
    route: [{ destination: { host: api.example.com, subset: v1 } }]
`,
      { namespace: 'shop', labels: { app: 'shop' } },
    );
    for (let i = 0; i < 6; i++) expect((await reply(`https://api.example.com:${port}/`)).pod).toBe('127.0.0.3');
  });

  it("HTTP routes keep serving the host's HTTP port while its TLS port takes the tls routes", async () => {
    mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  resolution: STATIC
  ports: [{ number: ${port}, name: tls, protocol: TLS }, { number: 80, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.3, labels: { version: v1 } }
  - { address: 127.0.0.4, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api.example.com
  subsets: [{ name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  http:
  - directResponse: { status: 418, body: { string: http route } }
  tls:
  - match: [{ sniHosts: [api.example.com] }]
    route: [{ destination: { host: api.example.com, subset: v2 } }]
`,
      { namespace: 'shop' },
    );
    for (let i = 0; i < 4; i++) expect((await reply(`https://api.example.com:${port}/`)).pod).toBe('127.0.0.4');
    const http = await mesh.request('http://api.example.com/');
    expect(http.statusCode).toBe(418);
    expect(await http.body.text()).toBe('http route');
  });
});

describe('Kubernetes Service ports named tls-* or https-*, or with appProtocol tls or https', () => {
  it.each([{ name: 'tls-ledger' }, { name: 'https' }, { name: 'web', appProtocol: 'tls' }, { name: 'http-web', appProtocol: 'https' }])(
    'port %o is a TLS port: HTTP routes do not apply, https:// passes through, http:// is refused',
    async (portSpec) => {
      const watcher = new MemoryKubeWatcher();
      mesh = await meshFromYaml(
        `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ledger, namespace: shop }
spec:
  hosts: [ledger]
  http:
  - directResponse: { status: 418, body: { string: from an http route } }
`,
        { namespace: 'shop', dns: false, kubeWatcher: watcher },
      );
      const { slices, services } = namespaceCollections(watcher, 'shop');
      services.upsert(service('shop', 'ledger', [{ ...portSpec, port: 8443, targetPort: port }]));
      slices.upsert(slice('shop', 'ledger-a', 'ledger', [{ name: portSpec.name, port }], [endpoint(ledger.address, 'ledger-1')]));
      expect(await reply('https://ledger.shop.svc.cluster.local:8443/balance')).toMatchObject({
        pod: '127.0.0.8',
        sni: 'ledger.shop.svc.cluster.local',
        path: '/balance',
      });
      expect(((await failure(mesh.request('http://ledger.shop.svc.cluster.local:8443/'))) as MeshError).code).toBe('ERR_MESH_TLS_PORT_PLAINTEXT');
    },
  );
});

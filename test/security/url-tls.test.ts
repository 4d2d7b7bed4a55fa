// https:// URLs through the mesh originate TLS to the endpoint the balancer picks: Node's trust
// store, SNI = the URL's host name, the certificate checked against it. Real certificates from a
// CA minted here (added to Node's default CA list, as an operator's trust store would hold it),
// real node:https servers on loopback "pods", and a plaintext-only server that must never see a
// request.
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { UpstreamTlsError } from '../../src/index.js';
import { TestCa } from '../helpers/certs.js';
import { dnsOptions } from '../helpers/dns-mesh.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { endpoint, namespaceCollections, service, slice } from '../helpers/kube-objects.js';
import { MemoryKubeWatcher } from '../helpers/memory-kube.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { PlaintextPod, TlsPod } from '../helpers/tls-pods.js';
import { requireSystemTools } from '../helpers/system-tools.js';
import { failure } from '../helpers/failure.js';

requireSystemTools('dnsmasq');

const HOST = 'api.example.com';
const KUBE_HOST = 'reviews.shop.svc.cluster.local';

let dir: string;
let ca: TestCa;
let systemCas: string[];
let good: TlsPod;
let wrongName: TlsPod;
let unknownCa: TlsPod;
let expired: TlsPod;
let localhost: TlsPod;
let kubePod: TlsPod;
let plain: PlaintextPod;
let mesh: Mesh | undefined;

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  const stranger = TestCa.create(dir, 'a CA nobody trusts');
  systemCas = getCACertificates('default');
  setDefaultCACertificates([...systemCas, ca.cert]);
  good = await TlsPod.start('127.0.0.2', { cert: ca.issue(HOST, { dns: [HOST], ips: ['127.0.0.2'] }) });
  wrongName = await TlsPod.start('127.0.0.3', { cert: ca.issue('other.example.com', { dns: ['other.example.com'] }) });
  unknownCa = await TlsPod.start('127.0.0.4', { cert: stranger.issue(HOST, { dns: [HOST] }) });
  expired = await TlsPod.start('127.0.0.5', { cert: ca.issue(HOST, { dns: [HOST], expired: true }) });
  localhost = await TlsPod.start('127.0.0.1', { cert: ca.issue('localhost', { dns: ['localhost'] }) });
  kubePod = await TlsPod.start('127.0.0.7', { cert: ca.issue(KUBE_HOST, { dns: [KUBE_HOST] }) });
  plain = await PlaintextPod.start('127.0.0.6');
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

afterAll(async () => {
  setDefaultCACertificates(systemCas);
  await Promise.all([good, wrongName, unknownCa, expired, localhost, kubePod, plain].map((p) => p?.close()));
  await removeTempDir(dir);
});

/** A ServiceEntry for `api.example.com` on `port` whose one STATIC endpoint is `address`. */
function serviceEntry(port: number, address: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: https, protocol: HTTPS }]
  endpoints: [{ address: ${address} }]
${extra}`;
}

describe('https:// URLs to mesh hosts originate TLS', () => {
  it('mesh.fetch, mesh.request and fetch with the dispatcher: SNI is the host, the certificate is verified, the pod answers', async () => {
    mesh = await meshFromYaml(serviceEntry(good.port, good.address), { namespace: 'shop' });
    const url = `https://${HOST}:${good.port}/hello`;

    const viaFetch = await mesh.fetch(url, { method: 'POST', body: 'over tls' });
    expect(viaFetch.status).toBe(200);
    const fetched = (await viaFetch.json()) as TlsPodReply;
    expect(fetched).toMatchObject({ pod: '127.0.0.2', sni: HOST, path: '/hello', host: `${HOST}:${good.port}`, body: 'over tls' });

    const viaRequest = await mesh.request(url);
    expect(viaRequest.statusCode).toBe(200);
    expect(((await viaRequest.body.json()) as TlsPodReply).sni).toBe(HOST);

    const viaDispatcher = await undiciFetch(url, { dispatcher: mesh.dispatcher });
    expect(((await viaDispatcher.json()) as TlsPodReply).sni).toBe(HOST);
  });

  it('endpoints from DNS (a resolution: DNS ServiceEntry) and from Kubernetes EndpointSlices get the same TLS', async () => {
    const dns = await Dnsmasq.start({ hosts: { [HOST]: ['127.0.0.2'] } });
    try {
      mesh = await meshFromYaml(
        `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: ${good.port}, name: https, protocol: HTTPS }]
`,
        { namespace: 'shop', dns: dnsOptions(dns) },
      );
      const res = await mesh.request(`https://${HOST}:${good.port}/dns`);
      expect((await res.body.json()) as TlsPodReply).toMatchObject({ pod: '127.0.0.2', sni: HOST, path: '/dns' });
    } finally {
      await mesh?.close();
      mesh = undefined;
      await dns.close();
    }

    const watcher = new MemoryKubeWatcher();
    mesh = await meshFromYaml('', { namespace: 'shop', dns: false, kubeWatcher: watcher });
    const { slices, services } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'reviews', [{ name: 'https', port: 8443, targetPort: 'https' }]));
    slices.upsert(slice('shop', 'reviews-a', 'reviews', [{ name: 'https', port: kubePod.port }], [endpoint(kubePod.address, 'reviews-1')]));
    const res = await mesh.request(`https://${KUBE_HOST}:8443/kube`);
    expect((await res.body.json()) as TlsPodReply).toMatchObject({ pod: kubePod.address, sni: KUBE_HOST, path: '/kube' });
  });

  it('an IP address URL (passed through) sends no SNI, and the certificate must name that address', async () => {
    mesh = await meshFromYaml('', { namespace: 'shop' });
    const res = await mesh.request(`https://127.0.0.2:${good.port}/`);
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as TlsPodReply).sni).toBeNull();
    // The same server under another address its certificate does not name is refused.
    const error = await failure(mesh.request(`https://127.0.0.3:${wrongName.port}/`));
    expect((error as UpstreamTlsError).reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect((error as UpstreamTlsError).servername).toBeUndefined();
  });

  it("a certificate for another name is refused with UpstreamTlsError (Node's error kept as the cause); the pod never gets the request", async () => {
    mesh = await meshFromYaml(serviceEntry(wrongName.port, wrongName.address), { namespace: 'shop' });
    const error = await failure(mesh.request(`https://${HOST}:${wrongName.port}/`));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    const tlsError = error as UpstreamTlsError;
    expect(tlsError.code).toBe('ERR_MESH_UPSTREAM_TLS');
    expect(tlsError.reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(tlsError.servername).toBe(HOST);
    expect(tlsError.endpoint).toBe(`127.0.0.3:${wrongName.port}`);
    expect(tlsError.message).toMatch(
      /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure, transport failure reason: TLS error: ERR_TLS_CERT_ALTNAME_INVALID/,
    );
    expect((tlsError.cause as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(wrongName.replies).toHaveLength(0);

    // Through fetch the same error is the cause of fetch's TypeError.
    const fetchError = await failure(mesh.fetch(`https://${HOST}:${wrongName.port}/`));
    expect(fetchError.cause).toBeInstanceOf(UpstreamTlsError);
  });

  it('a certificate from a CA outside the trust store, and an expired one, are refused', async () => {
    mesh = await meshFromYaml(serviceEntry(unknownCa.port, unknownCa.address), { namespace: 'shop' });
    const untrusted = await failure(mesh.request(`https://${HOST}:${unknownCa.port}/`));
    expect(untrusted).toBeInstanceOf(UpstreamTlsError);
    expect((untrusted as UpstreamTlsError).reason).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(unknownCa.replies).toHaveLength(0);
    await mesh.close();

    mesh = await meshFromYaml(serviceEntry(expired.port, expired.address), { namespace: 'shop' });
    const old = await failure(mesh.request(`https://${HOST}:${expired.port}/`));
    expect((old as UpstreamTlsError).reason).toBe('CERT_HAS_EXPIRED');
    expect(expired.replies).toHaveLength(0);
  });

  it('a plaintext-only server never receives the request: it sees one TLS ClientHello, as an HTTPS port is not retried', async () => {
    mesh = await meshFromYaml(serviceEntry(plain.port, plain.address), { namespace: 'shop' });
    const error = await failure(mesh.request(`https://${HOST}:${plain.port}/secret`, { method: 'POST', body: 'card=4111' }));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect(plain.requests).toBe(0);
    // An HTTPS port is Envoy's tcp_proxy, which has no HTTP retries: one handshake, no request.
    expect(plain.refused).toHaveLength(1);
    expect(plain.sawOnlyTls).toBe(true);
  });

  it('a DestinationRule with tls mode DISABLE does not turn an https:// URL into plaintext', async () => {
    mesh = await meshFromYaml(
      serviceEntry(
        plain.port,
        plain.address,
        `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: { tls: { mode: DISABLE } }
`,
      ),
      { namespace: 'shop' },
    );
    const before = plain.refused.length;
    await failure(mesh.request(`https://${HOST}:${plain.port}/`));
    expect(plain.requests).toBe(0);
    expect(plain.refused.length).toBeGreaterThan(before);
    expect(plain.sawOnlyTls).toBe(true);
    await mesh.close();

    mesh = await meshFromYaml(
      serviceEntry(
        good.port,
        good.address,
        `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: { tls: { mode: DISABLE } }
`,
      ),
      { namespace: 'shop' },
    );
    const res = await mesh.request(`https://${HOST}:${good.port}/`);
    expect(((await res.body.json()) as TlsPodReply).sni).toBe(HOST);
  });

  it('pass-through (a host outside the registry): TLS with the trust store and the host name; a name mismatch is refused', async () => {
    mesh = await meshFromYaml('', { namespace: 'shop' });
    const res = await mesh.request(`https://localhost:${localhost.port}/out`);
    expect(res.statusCode).toBe(200);
    expect((await res.body.json()) as TlsPodReply).toMatchObject({ pod: '127.0.0.1', sni: 'localhost', path: '/out' });

    const error = await failure(mesh.request(`https://127.0.0.3:${wrongName.port}/`));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect(wrongName.replies).toHaveLength(0);
  });
});

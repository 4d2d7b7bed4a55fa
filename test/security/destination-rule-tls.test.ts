// DestinationRule `tls` originates TLS for its destination, as Istio's egress TLS origination task
// does: the application calls http://api.example.com (port 80), the ServiceEntry sends port 80 to
// the endpoints' TLS port (targetPort) and the rule's `tls` makes the connection TLS. Real
// certificates minted here, real node:https pods on loopback, a plaintext-only server that must
// never see a request when TLS was asked for.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EjectionEvent, Mesh } from '../../src/index.js';
import { createMesh, TlsCredentialUnavailableError, UpstreamTlsError, WorkloadCertificateUnavailableError } from '../../src/index.js';
import { seededRandom } from '../../src/clock.js';
import type { IssuedCert } from '../helpers/certs.js';
import { TestCa } from '../helpers/certs.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { PlaintextPod, TlsPod } from '../helpers/tls-pods.js';
import { failure } from '../helpers/failure.js';

const HOST = 'api.example.com';
const SPIFFE = 'spiffe://example.com/ns/external/sa/api';

let dir: string;
let ca: TestCa;
let client: IssuedCert;
let strangerClient: IssuedCert;
let systemCas: string[];
/** Every pod listens on one port, as a ServiceEntry's endpoints do. */
let api: TlsPod;
let mutual: TlsPod;
let stranger: TlsPod;
let revoked: TlsPod;
let plain: PlaintextPod;
/** On 127.0.0.1 (`localhost`), its own port. */
let local: TlsPod;
let crlPath: string;
let mesh: Mesh | undefined;

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  const other = TestCa.create(dir, 'a CA nobody trusts');
  systemCas = getCACertificates('default');
  client = ca.issue('orders-client', { usage: 'client' });
  strangerClient = other.issue('stranger-client', { usage: 'client' });
  api = await TlsPod.start('127.0.0.2', { cert: ca.issue(HOST, { dns: [HOST, 'alt.example.com'], uris: [SPIFFE] }) });
  const port = api.port;
  mutual = await TlsPod.start('127.0.0.3', { cert: ca.issue(HOST, { dns: [HOST] }), clientCa: ca.cert, port });
  stranger = await TlsPod.start('127.0.0.4', { cert: other.issue(HOST, { dns: [HOST] }), port });
  const revokedCert = ca.issue(HOST, { dns: [HOST] });
  revoked = await TlsPod.start('127.0.0.5', { cert: revokedCert, port });
  ca.revoke(revokedCert);
  crlPath = ca.crl().path;
  plain = await PlaintextPod.start('127.0.0.6', port);
  local = await TlsPod.start('127.0.0.1', { cert: ca.issue('localhost', { dns: ['localhost'] }), clientCa: ca.cert });
});

afterEach(async () => {
  setDefaultCACertificates(systemCas);
  await mesh?.close();
  mesh = undefined;
});

afterAll(async () => {
  await Promise.all([api, mutual, stranger, revoked, plain, local].map((p) => p?.close()));
  await removeTempDir(dir);
});

/**
 * Istio's egress TLS origination shape: port 80 (HTTP) of `api.example.com` goes to the
 * endpoints' TLS port; `endpoints` are `address` or `address label=value`.
 */
function serviceEntry(endpoints: readonly string[], ports = [80]): string {
  const list = endpoints.map((e) => {
    const [address, label] = e.split(' ');
    const [k, v] = (label ?? '').split('=');
    return `{ address: ${address}${label ? `, labels: { ${k}: ${v} }` : ''} }`;
  });
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [${ports.map((p) => `{ number: ${p}, name: http-${p}, protocol: HTTP, targetPort: ${api.port} }`).join(', ')}]
  endpoints: [${list.join(', ')}]
`;
}

function destinationRule(trafficPolicy: string, extra = ''): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: ${trafficPolicy}
${extra}`;
}

const simple = (extra = '') => `{ mode: SIMPLE, caCertificates: ${ca.certPath}${extra} }`;
const mutualTls = (cert = client) => `{ mode: MUTUAL, caCertificates: ${ca.certPath}, clientCertificate: ${cert.certPath}, privateKey: ${cert.keyPath} }`;

async function call(url = `http://${HOST}/orders`, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<TlsPodReply> {
  const res = await mesh!.request(url, init);
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(200);
  return JSON.parse(text) as TlsPodReply;
}

describe('DestinationRule tls SIMPLE', () => {
  it('an http:// call to port 80 goes out as TLS to the endpoint (egress TLS origination): SNI is the host, the certificate is checked against caCertificates', async () => {
    mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule(`{ portLevelSettings: [{ port: { number: 80 }, tls: ${simple()} }] }`), {
      namespace: 'shop',
    });
    const reply = await call(`http://${HOST}/orders`, { method: 'POST', body: '{"id":1}' });
    expect(reply).toMatchObject({ pod: '127.0.0.2', sni: HOST, host: HOST, path: '/orders', body: '{"id":1}', client: null });
  });

  it("the ServiceEntry's subjectAltNames replace the name check when the rule names none, as istiod does", async () => {
    const withSans = (sans: string): string =>
      serviceEntry([api.address]).replace('  location: MESH_EXTERNAL\n', `  location: MESH_EXTERNAL\n  subjectAltNames: [${sans}]\n`);
    mesh = await meshFromYaml(withSans(SPIFFE) + destinationRule(`{ tls: ${simple()} }`), { namespace: 'shop' });
    expect(await call()).toMatchObject({ pod: '127.0.0.2', sni: HOST });
    await mesh.close();
    const served = api.replies.length;
    mesh = await meshFromYaml(withSans('spiffe://example.com/ns/external/sa/other') + destinationRule(`{ tls: ${simple()} }`), { namespace: 'shop' });
    const error = await failure(mesh.request(`http://${HOST}/orders`));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect((error as UpstreamTlsError).reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(error.message).toContain('spiffe://example.com/ns/external/sa/other');
    expect(api.replies.length).toBe(served);
    await mesh.close();
    // The rule's own subjectAltNames win over the ServiceEntry's.
    mesh = await meshFromYaml(withSans('spiffe://example.com/ns/external/sa/other') + destinationRule(`{ tls: ${simple(`, subjectAltNames: [${SPIFFE}]`)} }`), {
      namespace: 'shop',
    });
    expect(await call()).toMatchObject({ pod: '127.0.0.2' });
  });

  it("an https:// URL to the same destination makes one TLS session with the rule's settings (its CA, not the trust store)", async () => {
    mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule(`{ tls: ${simple(', sni: alt.example.com')} }`), { namespace: 'shop' });
    expect(await call(`https://${HOST}:80/orders`)).toMatchObject({ pod: '127.0.0.2', sni: 'alt.example.com', path: '/orders' });
  });

  it('the plaintext-only server never receives the request: it sees TLS ClientHellos only', async () => {
    mesh = await meshFromYaml(serviceEntry([plain.address]) + destinationRule(`{ tls: ${simple()} }`), { namespace: 'shop' });
    const error = await failure(mesh.request(`http://${HOST}/orders`, { method: 'POST', body: 'card=4111' }));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect(plain.requests).toBe(0);
    expect(plain.sawOnlyTls).toBe(true);
  });

  it('sni replaces the host name, as SNI and as the name the certificate must carry', async () => {
    mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule(`{ tls: ${simple(', sni: alt.example.com')} }`), { namespace: 'shop' });
    expect((await call()).sni).toBe('alt.example.com');
    await mesh.close();

    mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule(`{ tls: ${simple(', sni: nobody.example.com')} }`), { namespace: 'shop' });
    const error = await failure(mesh.request(`http://${HOST}/`));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect((error as UpstreamTlsError).reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect((error as UpstreamTlsError).servername).toBe('nobody.example.com');
  });

  it('subjectAltNames: the certificate must carry one of them, in place of the host name check', async () => {
    mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule(`{ tls: ${simple(`, subjectAltNames: ["${SPIFFE}"]`)} }`), { namespace: 'shop' });
    expect((await call()).pod).toBe('127.0.0.2');
    await mesh.close();

    const repliesBefore = api.replies.length;
    // The host name matches the certificate, but none of the names the rule asks for does.
    mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule(`{ tls: ${simple(', subjectAltNames: [someone-else.example.com]')} }`), {
      namespace: 'shop',
    });
    const error = await failure(mesh.request(`http://${HOST}/`));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect((error as UpstreamTlsError).reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(error.message).toContain('subjectAltNames [someone-else.example.com] of DestinationRule shop/api spec.trafficPolicy.tls');
    expect(api.replies.length).toBe(repliesBefore);
  });

  it("without caCertificates Node's trust store decides; insecureSkipVerify: true accepts a certificate no CA vouches for", async () => {
    mesh = await meshFromYaml(serviceEntry([stranger.address]) + destinationRule('{ tls: { mode: SIMPLE } }'), { namespace: 'shop' });
    const error = await failure(mesh.request(`http://${HOST}/`));
    expect((error as UpstreamTlsError).reason).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(stranger.replies).toHaveLength(0);
    await mesh.close();

    mesh = await meshFromYaml(serviceEntry([stranger.address]) + destinationRule('{ tls: { mode: SIMPLE, insecureSkipVerify: true } }'), { namespace: 'shop' });
    expect(await call()).toMatchObject({ pod: '127.0.0.4', sni: HOST });
    await mesh.close();

    // The trust store is Node's own, with what the process added to it.
    setDefaultCACertificates([...systemCas, ca.cert]);
    mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule('{ tls: { mode: SIMPLE } }'), { namespace: 'shop' });
    expect((await call()).sni).toBe(HOST);
  });

  it('caCrl: a server certificate the CRL revokes is refused; without the CRL it is accepted', async () => {
    mesh = await meshFromYaml(serviceEntry([revoked.address]) + destinationRule(`{ tls: ${simple(`, caCrl: ${crlPath}`)} }`), { namespace: 'shop' });
    const error = await failure(mesh.request(`http://${HOST}/`));
    expect((error as UpstreamTlsError).reason).toBe('CERT_REVOKED');
    expect(revoked.replies).toHaveLength(0);
    await mesh.close();

    mesh = await meshFromYaml(serviceEntry([revoked.address]) + destinationRule(`{ tls: ${simple()} }`), { namespace: 'shop' });
    expect((await call()).pod).toBe('127.0.0.5');
  });
});

describe('DestinationRule tls MUTUAL and DISABLE', () => {
  it('MUTUAL presents the client certificate: the server that requires one sees it', async () => {
    mesh = await meshFromYaml(serviceEntry([mutual.address]) + destinationRule(`{ tls: ${mutualTls()} }`), { namespace: 'shop' });
    expect(await call()).toMatchObject({ pod: '127.0.0.3', sni: HOST, client: 'orders-client' });
  });

  it('without a client certificate (SIMPLE), or with one from another CA, the server refuses and never sees the request', async () => {
    const before = mutual.replies.length;
    mesh = await meshFromYaml(serviceEntry([mutual.address]) + destinationRule(`{ tls: ${simple()} }`), { namespace: 'shop' });
    await failure(mesh.request(`http://${HOST}/`, { method: 'POST', body: 'x' }));
    await mesh.close();
    mesh = await meshFromYaml(serviceEntry([mutual.address]) + destinationRule(`{ tls: ${mutualTls(strangerClient)} }`), { namespace: 'shop' });
    await failure(mesh.request(`http://${HOST}/`));
    expect(mutual.replies.length).toBe(before);
    expect(mutual.failedHandshakes).toBeGreaterThanOrEqual(2);
  });

  it('DISABLE: plaintext, as without a rule', async () => {
    mesh = await meshFromYaml(serviceEntry([plain.address]) + destinationRule('{ tls: { mode: DISABLE } }'), { namespace: 'shop' });
    const before = plain.requests;
    const res = await mesh.request(`http://${HOST}/`);
    expect(await res.body.text()).toBe('plaintext');
    expect(plain.requests).toBe(before + 1);
  });
});

describe('TLS the mesh cannot originate fails closed', () => {
  it('ISTIO_MUTUAL without workload certificates: every request fails with WorkloadCertificateUnavailableError naming the rule; nothing is sent, nothing retried, no pod ejected', async () => {
    const refusedBefore = plain.refused.length;
    const requestsBefore = plain.requests;
    mesh = await meshFromYaml(
      serviceEntry([plain.address]) +
        destinationRule('{ tls: { mode: ISTIO_MUTUAL }, outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100 } }'),
      { namespace: 'shop', certificates: false },
    );
    const ejections: EjectionEvent[] = [];
    mesh.on('ejection', (e) => ejections.push(e));
    for (let i = 0; i < 3; i++) {
      const error = await failure(mesh.request(`http://${HOST}/`));
      expect(error).toBeInstanceOf(WorkloadCertificateUnavailableError);
      expect((error as WorkloadCertificateUnavailableError).code).toBe('ERR_MESH_NO_WORKLOAD_CERTIFICATE');
      expect(error.message).toContain('DestinationRule shop/api spec.trafficPolicy.tls');
    }
    const viaFetch = await failure(mesh.fetch(`http://${HOST}/`));
    expect(viaFetch.cause).toBeInstanceOf(WorkloadCertificateUnavailableError);
    expect(plain.requests).toBe(requestsBefore);
    expect(plain.refused.length).toBe(refusedBefore);
    expect(ejections).toEqual([]);
  });

  it('credentialName (a Kubernetes Secret), here in a port-level setting: the same', async () => {
    mesh = await meshFromYaml(
      serviceEntry([plain.address]) +
        destinationRule('{ portLevelSettings: [{ port: { number: 80 }, tls: { mode: SIMPLE, credentialName: api-client-certs } }] }'),
      { namespace: 'shop' },
    );
    const requestsBefore = plain.requests;
    const error = await failure(mesh.request(`http://${HOST}/`));
    // This mesh reads no Kubernetes API: the Secret cannot be read, and nothing is sent.
    expect(error).toBeInstanceOf(TlsCredentialUnavailableError);
    expect((error as TlsCredentialUnavailableError).path).toBe('spec.trafficPolicy.portLevelSettings[0].tls.credentialName');
    expect(error.message).toContain('api-client-certs');
    expect(error.message).toContain('Kubernetes API');
    expect(plain.requests).toBe(requestsBefore);
  });
});

describe("which tls applies: Istio's merge", () => {
  it('a top-level portLevelSettings tls replaces the top-level tls for its port only', async () => {
    mesh = await meshFromYaml(
      serviceEntry([plain.address], [80, 81]) + destinationRule(`{ tls: ${simple()}, portLevelSettings: [{ port: { number: 81 }, tls: { mode: DISABLE } }] }`),
      { namespace: 'shop' },
    );
    const requests = plain.requests;
    const res = await mesh.request(`http://${HOST}:81/`);
    expect(await res.body.text()).toBe('plaintext');
    expect(plain.requests).toBe(requests + 1);
    // Port 80 keeps the top-level SIMPLE: the plaintext server only sees a handshake.
    await failure(mesh.request(`http://${HOST}/`));
    expect(plain.requests).toBe(requests + 1);
    expect(plain.refused.at(-1)?.[0]).toBe(0x16);
  });

  it("a subset's tls replaces the top level, and the subset's port-level tls replaces the subset's", async () => {
    const subsets = `  subsets:
  - name: inherits
    labels: { pod: api }
  - name: plaintext
    labels: { pod: plain }
    trafficPolicy: { tls: { mode: DISABLE } }
  - name: client-cert
    labels: { pod: mutual }
    trafficPolicy:
      tls: ${simple()}
      portLevelSettings: [{ port: { number: 80 }, tls: ${mutualTls()} }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  http:
  - match: [{ headers: { x-subset: { exact: plaintext } } }]
    route: [{ destination: { host: ${HOST}, subset: plaintext } }]
  - match: [{ headers: { x-subset: { exact: client-cert } } }]
    route: [{ destination: { host: ${HOST}, subset: client-cert } }]
  - route: [{ destination: { host: ${HOST}, subset: inherits } }]
`;
    mesh = await meshFromYaml(
      serviceEntry([`${api.address} pod=api`, `${plain.address} pod=plain`, `${mutual.address} pod=mutual`]) + destinationRule(`{ tls: ${simple()} }`, subsets),
      { namespace: 'shop' },
    );
    expect(await call()).toMatchObject({ pod: '127.0.0.2', sni: HOST, client: null });
    expect(await call(`http://${HOST}/`, { headers: { 'x-subset': 'client-cert' } })).toMatchObject({ pod: '127.0.0.3', client: 'orders-client' });
    const requests = plain.requests;
    const res = await mesh.request(`http://${HOST}/`, { headers: { 'x-subset': 'plaintext' } });
    expect(await res.body.text()).toBe('plaintext');
    expect(plain.requests).toBe(requests + 1);
  });
});

describe('beyond the endpoints of a cluster', () => {
  it("a destination without a ServiceEntry (passed through by name) originates the rule's TLS too", async () => {
    // No ServiceEntry at all: Istio would ignore the rule and pass the request through in
    // plaintext; here the TLS the rule asks for is originated all the same. (Istio's validation
    // takes names, not IP addresses, as rule hosts: `localhost`, which the rule's namespace
    // qualifies as the request's host is qualified.)
    mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: local, namespace: shop }
spec:
  host: localhost
  trafficPolicy: { tls: { mode: MUTUAL, caCertificates: ${ca.certPath}, clientCertificate: ${client.certPath}, privateKey: ${client.keyPath}, sni: localhost } }
`,
      { namespace: 'shop' },
    );
    expect(await call(`http://localhost:${local.port}/unknown`)).toMatchObject({ sni: 'localhost', client: 'orders-client', path: '/unknown' });
  });

  it("a mirrored copy goes to the mirror's endpoints with the mirror destination's TLS", async () => {
    mesh = await meshFromYaml(
      serviceEntry([api.address]) +
        destinationRule(`{ tls: ${simple()} }`) +
        `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shadow, namespace: shop }
spec:
  hosts: [shadow.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${api.port} }]
  endpoints: [{ address: ${mutual.address} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shadow, namespace: shop }
spec:
  host: shadow.example.com
  trafficPolicy: { tls: { mode: MUTUAL, caCertificates: ${ca.certPath}, clientCertificate: ${client.certPath}, privateKey: ${client.keyPath}, sni: ${HOST} } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  http: [{ route: [{ destination: { host: ${HOST} } }], mirror: { host: shadow.example.com }, mirrorPercentage: { value: 100 } }]
`,
      { namespace: 'shop' },
    );
    const seen = mutual.replies.length;
    expect((await call(`http://${HOST}/copy`)).pod).toBe('127.0.0.2');
    await mutual.until(seen + 1);
    expect(mutual.replies[seen]).toMatchObject({ pod: '127.0.0.3', sni: HOST, client: 'orders-client', path: '/copy', host: `${HOST}-shadow` });
  });
});

describe('configuration changes', () => {
  it('a DestinationRule tls change switches pools: the next request opens a connection under the new settings', async () => {
    const source = new PushSource(yamlDocs(serviceEntry([api.address]) + destinationRule(`{ tls: ${simple()} }`)));
    mesh = await createMesh({ namespace: 'shop', sources: [source], watch: false });
    expect((await call()).sni).toBe(HOST);
    expect((await call()).sni).toBe(HOST);

    const accepted = new Promise((resolve) => mesh!.once('snapshot', resolve));
    source.push(yamlDocs(serviceEntry([api.address]) + destinationRule(`{ tls: ${simple(', sni: alt.example.com')} }`)));
    await accepted;
    // The SNI belongs to the connection: a kept-alive one from before would still say api.example.com.
    expect((await call()).sni).toBe('alt.example.com');

    const again = new Promise((resolve) => mesh!.once('snapshot', resolve));
    source.push(yamlDocs(serviceEntry([mutual.address]) + destinationRule(`{ tls: ${mutualTls()} }`)));
    await again;
    expect((await call()).client).toBe('orders-client');
  });
});

describe('TLS handshake failures are connect failures', () => {
  it('retried on another endpoint and counted by outlier detection: the pod with a certificate nobody trusts is ejected, callers see only answers', async () => {
    const yaml =
      serviceEntry([api.address, stranger.address]) +
      destinationRule(
        `{ tls: ${simple()}, outlierDetection: { consecutiveGatewayErrors: 1, consecutive5xxErrors: 0, maxEjectionPercent: 100, baseEjectionTime: 1h } }`,
      );
    mesh = await meshFromYaml(yaml, { namespace: 'shop', random: seededRandom(3) });
    const strangerReplies = stranger.replies.length;
    const ejections: EjectionEvent[] = [];
    mesh.on('ejection', (e) => ejections.push(e));
    for (let i = 0; i < 8; i++) expect((await call()).pod).toBe('127.0.0.2');
    expect(ejections.map((e) => `${e.action} ${e.endpoint} ${e.reason}`)).toEqual([`eject 127.0.0.4:${api.port} consecutive-gateway-failure`]);
    expect(stranger.replies).toHaveLength(strangerReplies);
  });
});

it('the certificate files are read when the configuration is compiled, not per request', async () => {
  const caCopy = join(dir, 'ca-copy.pem');
  writeFileSync(caCopy, ca.cert);
  mesh = await meshFromYaml(serviceEntry([api.address]) + destinationRule(`{ tls: { mode: SIMPLE, caCertificates: ${caCopy} } }`), { namespace: 'shop' });
  // Replaced on disk after the snapshot was built: the compiled settings keep serving.
  writeFileSync(caCopy, 'not a certificate');
  expect((await call()).sni).toBe(HOST);
});

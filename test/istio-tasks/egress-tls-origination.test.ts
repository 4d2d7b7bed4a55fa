// Istio task "Egress TLS Origination":
// https://istio.io/latest/docs/tasks/traffic-management/egress/egress-tls-origination/
// The task's ServiceEntry and DestinationRule, verbatim but for port 443, which is the TLS pod's
// port here. edition.cnn.com resolves through a real dnsmasq to a loopback pod serving TLS with a
// certificate from a CA the test adds to Node's trust store (the OS CA certificates' role: the
// task's rule has no caCertificates).
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { TestCa } from '../helpers/certs.js';
import { dnsOptions } from '../helpers/dns-mesh.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { TlsPod } from '../helpers/tls-pods.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

const CNN = '127.0.0.2';

let dir: string;
let systemCas: string[];
let pod: TlsPod;
let dns: Dnsmasq;
let mesh: Mesh;

const config = (tlsPort: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: ${tlsPort}
  - number: ${tlsPort}
    name: https-port
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: SIMPLE # initiates HTTPS when accessing edition.cnn.com
`;

beforeAll(async () => {
  dir = await makeTempDir();
  const ca = TestCa.create(dir);
  systemCas = getCACertificates('default');
  setDefaultCACertificates([...systemCas, ca.cert]);
  pod = await TlsPod.start(CNN, { cert: ca.issue('edition.cnn.com', { dns: ['edition.cnn.com'] }) });
  dns = await Dnsmasq.start({ hosts: { 'edition.cnn.com': [CNN] } });
  mesh = await meshFromYaml(config(pod.port), { namespace: 'default', dns: dnsOptions(dns) });
});

afterAll(async () => {
  await mesh?.close();
  await dns?.close();
  await pod?.close();
  setDefaultCACertificates(systemCas);
  await removeTempDir(dir);
});

describe('Istio task: Egress TLS Origination', () => {
  it('curl http://edition.cnn.com/politics: the sidecar originates TLS, the server sees HTTPS with SNI edition.cnn.com', async () => {
    const res = await mesh.request('http://edition.cnn.com/politics');
    expect(res.statusCode).toBe(200);
    expect((await res.body.json()) as TlsPodReply).toMatchObject({ pod: CNN, sni: 'edition.cnn.com', path: '/politics', host: 'edition.cnn.com' });
  });

  it("curl https://edition.cnn.com/politics (the application's own TLS, port 443) works as before", async () => {
    const res = await mesh.request(`https://edition.cnn.com:${pod.port}/politics`);
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as TlsPodReply).sni).toBe('edition.cnn.com');
  });
});

import { describe, expect, it } from 'vitest';
import { planEndpoints } from '../../src/cluster/endpoint-plan.js';
import { compilePortNames, DnsOptionError, isKubernetesServiceName, srvPortName } from '../../src/discovery/dns/index.js';
import { serviceEntryDnsWatches } from '../../src/cluster/service-entry-dns.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

describe('Kubernetes SRV names', () => {
  it('are asked only for a service name itself, under the cluster domain', () => {
    expect(isKubernetesServiceName('reviews.shop.svc.cluster.local', 'cluster.local')).toBe(true);
    expect(isKubernetesServiceName('Reviews.Shop.svc.cluster.local.', 'cluster.local')).toBe(true);
    expect(isKubernetesServiceName('reviews.shop.svc.corp.example', 'corp.example')).toBe(true);
    // A pod name under a headless service, a partial name, another domain: no SRV records there.
    expect(isKubernetesServiceName('pod-0.reviews.shop.svc.cluster.local', 'cluster.local')).toBe(false);
    expect(isKubernetesServiceName('reviews.shop', 'cluster.local')).toBe(false);
    expect(isKubernetesServiceName('reviews.shop.svc.cluster.local', 'corp.example')).toBe(false);
    expect(isKubernetesServiceName('api.example.com', 'cluster.local')).toBe(false);
  });

  it('use port names that Kubernetes allows, lowercased', () => {
    expect(srvPortName('http-web')).toBe('http-web');
    expect(srvPortName('HTTP')).toBe('http');
    expect(srvPortName('http_web')).toBeUndefined();
    expect(srvPortName('-http')).toBeUndefined();
    expect(srvPortName('x'.repeat(64))).toBeUndefined();
  });
});

describe('dns.portNames', () => {
  it('accepts a service written with its namespace, keyed by the full name and port', () => {
    const map = compilePortNames(
      {
        'reviews.shop:9080': 'http-web',
        'ratings.shop.svc:9080': 'http',
        'details.other.svc.corp.example:50051': 'grpc',
        'Pages.Shop.:80': 'http',
      },
      'corp.example',
    );
    expect(Object.fromEntries(map)).toEqual({
      'reviews.shop.svc.corp.example:9080': 'http-web',
      'ratings.shop.svc.corp.example:9080': 'http',
      'details.other.svc.corp.example:50051': 'grpc',
      'pages.shop.svc.corp.example:80': 'http',
    });
    expect(compilePortNames(undefined, 'cluster.local').size).toBe(0);
  });

  it.each([
    ['reviews:9080', 'http', 'dns.portNames["reviews:9080"]: expected a Kubernetes service written with its namespace'],
    ['api.example.com:443', 'https', 'got "api.example.com"'],
    ['reviews.shop', 'http', 'dns.portNames["reviews.shop"]: expected the key as "<service>.<namespace>:<port>" with a port from 1 to 65535'],
    ['reviews.shop:0', 'http', 'with a port from 1 to 65535'],
    ['reviews.shop:70000', 'http', 'with a port from 1 to 65535'],
    ['reviews.shop:9080', 'Http', 'expected a Kubernetes Service port name (lowercase letters, digits and "-"'],
    ['reviews.shop:9080', 42, 'got number'],
  ])('rejects %s → %s', (key, value, message) => {
    const attempt = () => compilePortNames({ [key]: value as string }, 'cluster.local');
    expect(attempt).toThrow(DnsOptionError);
    expect(attempt).toThrow(message);
  });

  it('rejects a value that is not an object', () => {
    expect(() => compilePortNames(['reviews.shop:9080'] as unknown as Record<string, string>, 'cluster.local')).toThrow(
      'dns.portNames: expected an object mapping "<service>.<namespace>:<port>" to a port name, got an array',
    );
  });
});

describe('which ServiceEntry names are looked up by SRV', () => {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: mixed, namespace: shop }
spec:
  hosts: [mixed.example.test]
  location: MESH_INTERNAL
  resolution: DNS
  ports:
  - { number: 9080, name: http-web, protocol: HTTP }
  - { number: 9090, name: grpc, protocol: GRPC, targetPort: 8090 }
  - { number: 9100, name: Tcp-Raw, protocol: TCP }
  endpoints:
  - { address: reviews.shop.svc.cluster.local }
  - { address: pod-0.ratings.shop.svc.cluster.local }
  - { address: api.example.test }
  - { address: details.shop.svc.cluster.local, ports: { http-web: 8080 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: logical, namespace: shop }
spec:
  hosts: [ratings.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: DNS_ROUND_ROBIN
  ports: [{ number: 9080, name: http, protocol: HTTP }]
`;

  it('a Kubernetes service name at the port number, as an absolute name; anything written keeps its port', async () => {
    const mesh = await meshFromYaml(yaml, { namespace: 'shop', dns: false });
    try {
      const snapshot = mesh.snapshot;
      const service = snapshot.service('mixed.example.test')!;
      const watches = (port: number) =>
        serviceEntryDnsWatches(
          service,
          service.ports.find((p) => p.number === port)!,
          snapshot.clusterDomain,
        ).map((w) => `${w.name}:${w.port}${w.portName !== undefined ? ` _${w.portName}._${w.protocol}` : ''}`);
      expect(watches(9080)).toEqual([
        'reviews.shop.svc.cluster.local.:9080 _http-web._tcp',
        'pod-0.ratings.shop.svc.cluster.local:9080',
        'api.example.test:9080',
        // The entry gives the endpoint's port: it wins.
        'details.shop.svc.cluster.local:8080',
      ]);
      // targetPort is written: the entry's port wins over SRV.
      expect(watches(9090)).toEqual([
        'reviews.shop.svc.cluster.local:8090',
        'pod-0.ratings.shop.svc.cluster.local:8090',
        'api.example.test:8090',
        'details.shop.svc.cluster.local:8090',
      ]);
      // Port names are DNS-1123 labels (Istio refuses others); SRV asks for the name in lower case.
      expect(watches(9100)[0]).toBe('reviews.shop.svc.cluster.local.:9100 _tcp-raw._tcp');

      const ratings = snapshot.service('ratings.shop.svc.cluster.local')!;
      expect(serviceEntryDnsWatches(ratings, ratings.ports[0]!, snapshot.clusterDomain)).toEqual([
        expect.objectContaining({ name: 'ratings.shop.svc.cluster.local.', port: 9080, portName: 'http', mode: 'logical' }),
      ]);

      // A Kubernetes name no configuration knows: SRV only with a port name from dns.portNames.
      const dns = { portNames: new Map([['details.shop.svc.cluster.local:9080', 'http']]) };
      const plan = (host: string) => {
        const p = planEndpoints(snapshot, host, undefined, 9080, dns);
        return p?.kind === 'dns' ? p.bindings.map((b) => b.key) : p?.kind;
      };
      expect(plan('details.shop.svc.cluster.local')).toEqual(['_http._tcp.details.shop.svc.cluster.local:9080']);
      expect(plan('other.shop.svc.cluster.local')).toEqual(['other.shop.svc.cluster.local:9080']);
    } finally {
      await mesh.close();
    }
  });
});

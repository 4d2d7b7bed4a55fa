import { describe, expect, it } from 'vitest';
import { SCHEMA_KINDS } from '../../src/config/resource.js';
import { KIND_SCHEMAS } from '../../src/config/schema/index.js';
import type { IstioResource } from '../../src/config/schema/index.js';
import { bookinfo } from './bookinfo.js';
import { errors, summarize, validateYaml, warnings } from './helpers.js';

describe('valid Istio resources are accepted', () => {
  it('serves the versions Istio serves', () => {
    const served = Object.fromEntries(SCHEMA_KINDS.map((k) => [k, Object.keys(KIND_SCHEMAS[k].versions).sort()]));
    expect(served).toEqual({
      VirtualService: ['v1', 'v1alpha3', 'v1beta1'],
      DestinationRule: ['v1', 'v1alpha3', 'v1beta1'],
      ServiceEntry: ['v1', 'v1alpha3', 'v1beta1'],
      WorkloadEntry: ['v1', 'v1alpha3', 'v1beta1'],
      Sidecar: ['v1', 'v1alpha3', 'v1beta1'],
      PeerAuthentication: ['v1', 'v1beta1'],
      AuthorizationPolicy: ['v1', 'v1beta1'],
      RequestAuthentication: ['v1', 'v1beta1'],
      EnvoyFilter: ['v1alpha3'],
      RateLimitPolicy: ['v1alpha1'],
    });
  });

  for (const kind of SCHEMA_KINDS) {
    for (const version of Object.keys(KIND_SCHEMAS[kind].versions)) {
      it(`${kind} ${version}`, () => {
        const result = validateYaml(bookinfo(kind, version));
        expect(summarize(errors(result))).toEqual([]);
        expect(result.resource?.kind).toBe(kind);
        expect(result.resource?.apiVersion).toBe(`${KIND_SCHEMAS[kind].group}/${version}`);
      });
    }
  }

  it('keeps the spec as written and normalises the envelope', () => {
    const result = validateYaml(bookinfo('VirtualService'));
    const resource = result.resource as IstioResource<'VirtualService'>;
    expect(resource.metadata).toEqual({ name: 'reviews', namespace: 'default', labels: { app: 'reviews' } });
    expect(resource.spec.hosts).toEqual(['reviews']);
    expect(resource.spec.http?.[1]?.route?.map((r) => [r.destination.subset, r.weight])).toEqual([
      ['v1', 90],
      ['v3', 10],
    ]);
    expect(resource.document.location.file).toBe('test.yaml');
  });

  it('routing with only supported fields gives no warnings', () => {
    expect(summarize(validateYaml(bookinfo('VirtualService')).issues)).toEqual([]);
    expect(summarize(validateYaml(bookinfo('ServiceEntry')).issues)).toEqual([]);
    expect(summarize(validateYaml(bookinfo('WorkloadEntry')).issues)).toEqual([]);
    expect(summarize(validateYaml(bookinfo('Sidecar')).issues)).toEqual([]);
  });

  it('a DestinationRule traffic policy (connectionPool, outlierDetection) is accepted without warnings', () => {
    const result = validateYaml(bookinfo('DestinationRule'));
    expect(result.resource?.metadata.namespace).toBe('bookinfo');
    expect(summarize(warnings(result))).toEqual([]);
  });

  it('traffic-policy fields not applied are warned about, each with its reason', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: { consecutiveErrors: 3 }
    connectionPool: { http: { http2KeepAlive: { interval: 10s, timeout: 3s } } }
`);
    expect(summarize(warnings(result))).toEqual([
      // http2KeepAlive.timeout is applied: no warning for it.
      expect.stringMatching(/^warning not-applicable spec\.trafficPolicy\.outlierDetection\.consecutiveErrors: .*deprecated/),
    ]);
  });

  it('PeerAuthentication is accepted without warnings (it is enforced on inbound servers)', () => {
    const result = validateYaml(bookinfo('PeerAuthentication'));
    expect(result.resource).toBeDefined();
    expect(summarize(result.issues)).toEqual([]);
  });

  it('AuthorizationPolicy and RequestAuthentication are accepted without warnings (enforced by the inbound side)', () => {
    for (const kind of ['AuthorizationPolicy', 'RequestAuthentication'] as const) {
      const result = validateYaml(bookinfo(kind));
      expect(result.resource).toBeDefined();
      expect(summarize(result.issues)).toEqual([]);
    }
  });

  it('accepts an external DNS ServiceEntry; an empty VirtualService spec passes the CRD schema and is refused as istiod refuses it', () => {
    const external = validateYaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  ports:
  - {number: 443, name: https, protocol: TLS}
  resolution: DNS
`);
    expect(summarize(external.issues)).toEqual([]);
    const empty = validateYaml('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {}\n');
    expect(summarize(empty.issues)).toEqual(['error invalid-value spec: http, tcp or tls must be provided in virtual service']);
  });

  it('ignores status and Kubernetes-managed metadata, keeping what ordering needs', () => {
    const result = validateYaml(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
  uid: 0b0c5d1e-7a4f-4f55-9a51-1d1f7e2f9b10
  creationTimestamp: "2026-01-02T03:04:05Z"
  resourceVersion: "1234"
  generation: 3
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
  managedFields:
  - manager: kubectl
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
status:
  observedGeneration: 3
  validationMessages: []
`);
    expect(summarize(result.issues)).toEqual([]);
    expect(result.resource?.metadata).toEqual({
      name: 'reviews',
      namespace: 'bookinfo',
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
      creationTimestamp: '2026-01-02T03:04:05Z',
      resourceVersion: '1234',
      generation: 3,
    });
  });

  it('drops nulls as Kubernetes prunes them, but keeps nullable ones', () => {
    const result = validateYaml(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  exportTo:
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: ~
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        enabled: null
`);
    expect(summarize(errors(result))).toEqual([]);
    expect(result.resource?.spec).toEqual({
      host: 'reviews',
      subsets: [{ name: 'v1', labels: { version: 'v1' } }],
      trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: null } } },
    });
  });
});

// Type-level test, compiled by `npm run typecheck` (never run): inline configuration is typed from
// the CRD schemas. Each `@ts-expect-error` fails the typecheck if the error it marks goes away,
// that is if the typing became looser (e.g. back to `Record<string, unknown>`).
import type { DestinationRule, InlineConfig, MeshOptions, VirtualService, istio } from '../../src/index.js';

const reviews: VirtualService = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: {
    hosts: ['reviews'],
    http: [
      {
        match: [{ headers: { 'end-user': { exact: 'jason' } }, uri: { prefix: '/v2' } }],
        route: [{ destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } }, weight: 100 }],
        retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx,reset' },
        timeout: '10s',
      },
    ],
  },
};

const rule: istio.TrafficPolicy = { loadBalancer: { simple: 'LEAST_REQUEST' }, outlierDetection: { consecutive5xxErrors: 5 } };

// Objects in `config` are checked by kind (the union is discriminated on `kind`).
export const options: MeshOptions = {
  config: [
    'mesh/',
    reviews,
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', trafficPolicy: rule } },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: 'istio-system' },
      spec: { mtls: { mode: 'STRICT' } },
    },
    { kind: 'List', items: [reviews] },
  ],
};

export const misspelledField: VirtualService = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews' },
  // @ts-expect-error `timout` is not a field of an HTTP route (`timeout` is).
  spec: { hosts: ['reviews'], http: [{ timout: '1s', route: [{ destination: { host: 'reviews' } }] }] },
};

export const misspelledInConfig: MeshOptions = {
  config: [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews' },
      // @ts-expect-error `trafficPolicy.loadBalancer.simple` is one of Istio's names, not any string.
      spec: { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } },
    },
  ],
};

export const wrongSpecForKind: InlineConfig = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews' },
  // @ts-expect-error a DestinationRule's spec has no `http` (that is a VirtualService's).
  spec: { host: 'reviews', http: [] },
};

export const unservedApiVersion: DestinationRule = {
  // @ts-expect-error DestinationRule is not served as security.istio.io.
  apiVersion: 'security.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews' },
  spec: { host: 'reviews' },
};

// @ts-expect-error a resource needs metadata.name.
export const unnamed: InlineConfig = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: {}, spec: { hosts: ['a.example.com'] } };

export const unknownKind: MeshOptions = {
  // @ts-expect-error only the kinds sidecarless reads are typed objects.
  config: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, spec: {} }],
};

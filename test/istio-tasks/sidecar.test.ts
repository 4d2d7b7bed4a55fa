// Sidecar egress `hosts`, the Sidecar reference's examples:
// https://istio.io/latest/docs/reference/config/networking/sidecar/
// The `prod-us1` Sidecar is verbatim but for an added `outboundTrafficPolicy: REGISTRY_ONLY`
// (a field of the same resource, documented there) that makes a hidden host visible as an error;
// the root-namespace default (istio-config in the example, istio-system here, the mesh's root
// namespace) is verbatim.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { UnknownHostError } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { call } from './bookinfo.js';

const OWN = '127.0.0.2';
const APIS = '127.0.0.3';
const STAGING = '127.0.0.4';

const services = (port: number) => {
  const se = (namespace: string, host: string, address: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc, namespace: ${namespace} }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: ${address} }]
---
`;
  return se('prod-us1', 'own.prod-us1.example', OWN) + se('prod-apis', 'api.prod-apis.example', APIS) + se('staging', 'api.staging.example', STAGING);
};

const PROD_US1 = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: prod-us1
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
  egress:
  - hosts:
    - "prod-us1/*"
    - "prod-apis/*"
    - "istio-system/*"
`;
const ROOT_DEFAULT = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
`;

let pods: Pods;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start([OWN, APIS, STAGING]);
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const url = (host: string) => `http://${host}:${pods.port}/`;

describe('Sidecar reference: egress hosts', () => {
  it("prod-us1 sees its own namespace and prod-apis; staging's service is outside its registry", async () => {
    mesh = await meshFromYaml(services(pods.port) + PROD_US1, { namespace: 'prod-us1', dns: false });
    expect((await call(mesh, url('own.prod-us1.example'))).reply?.pod).toBe(OWN);
    expect((await call(mesh, url('api.prod-apis.example'))).reply?.pod).toBe(APIS);
    await expect(call(mesh, url('api.staging.example'))).rejects.toBeInstanceOf(UnknownHostError);
  });

  it("without a Sidecar every namespace's service is visible", async () => {
    mesh = await meshFromYaml(services(pods.port), { namespace: 'prod-us1', dns: false });
    expect((await call(mesh, url('api.staging.example'))).reply?.pod).toBe(STAGING);
  });

  it('the root namespace default applies to namespaces without their own Sidecar: only "./*" and istio-system', async () => {
    mesh = await meshFromYaml(services(pods.port) + ROOT_DEFAULT, { namespace: 'prod-apis', dns: false });
    expect((await call(mesh, url('api.prod-apis.example'))).reply?.pod).toBe(APIS);
    await expect(call(mesh, url('own.prod-us1.example'))).rejects.toBeInstanceOf(UnknownHostError);
    await expect(call(mesh, url('api.staging.example'))).rejects.toBeInstanceOf(UnknownHostError);
  });

  it("a namespace's own Sidecar wins over the root default", async () => {
    mesh = await meshFromYaml(services(pods.port) + ROOT_DEFAULT + '---\n' + PROD_US1, { namespace: 'prod-us1', dns: false });
    expect((await call(mesh, url('api.prod-apis.example'))).reply?.pod).toBe(APIS);
  });
});

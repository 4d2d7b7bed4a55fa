import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InlineConfig, Mesh, MeshConfigError } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import { reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';

/** Istio's validation rules seen from a mesh: what loads, what is refused, what keeps serving. */
let pods: Pods;
let dir: string;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  dir = await mkdtemp(join(tmpdir(), 'sidecarless-istio-rules-'));
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
  await rm(dir, { recursive: true, force: true });
});

const reviews = () => `${reviewsServiceEntry(pods.port, ['127.0.0.2', '127.0.0.3']).replace(
  'endpoints: [{ address: 127.0.0.2 }, { address: 127.0.0.3 }]',
  `endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v2 } }`,
)}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

const route = (http: string) => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
${http}`;

async function get(m: Mesh, path: string, headers: Record<string, string> = {}): Promise<{ status: number; pod: string | undefined }> {
  const res = await m.request(`http://reviews:${pods.port}${path}`, { headers });
  const text = await res.body.text();
  const pod = res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as PodReply).pod : undefined;
  return { status: res.statusCode, pod };
}

describe("Istio's validation rules in a running mesh", () => {
  it('refuses a STATIC ServiceEntry whose endpoint is a name, naming file, line, resource and field', async () => {
    const file = join(dir, 'api.yaml');
    await writeFile(
      file,
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints:
  - address: backend.example.com
`,
    );
    const error = (await createMesh({ namespace: 'shop', config: [file], watch: false }).catch((e: unknown) => e)) as MeshConfigError;
    expect(error.code).toBe('ERR_MESH_CONFIG');
    expect(error.message).toContain(
      `${file}:9: ServiceEntry shop/api: spec.endpoints[0].address: endpoint address "backend.example.com" is not a valid IP address`,
    );
  });

  it("refuses a local reply status in 100-199 at load time, with Istio's message", async () => {
    const file = join(dir, 'status.yaml');
    await writeFile(
      file,
      reviews() +
        route(`  - match: [{ uri: { prefix: /early } }]
    directResponse: { status: 103 }
  - fault: { abort: { httpStatus: 100, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews } }]
`),
    );
    const error = (await createMesh({ namespace: 'shop', config: [file], watch: false }).catch((e: unknown) => e)) as MeshConfigError;
    expect(error.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'spec.http[0].directResponse.status: HTTP status 103 is not in range 200-599',
      'spec.http[1].fault.abort.httpStatus: HTTP status 100 is not in range 200-599',
    ]);
  });

  it('keeps serving the last good routes when a change breaks an Istio rule', async () => {
    const good = route(`  - route: [{ destination: { host: reviews, subset: v1 } }]\n`);
    const source = new PushSource(yamlDocs(reviews() + good));
    mesh = await createMesh({ namespace: 'shop', sources: [source], dns: false });
    expect(await get(mesh, '/')).toEqual({ status: 200, pod: '127.0.0.2' });
    const rejected = new Promise<MeshConfigError>((resolve) => mesh!.once('configRejected', resolve));
    source.push(yamlDocs(reviews() + route(`  - route: [{ destination: { host: reviews, subset: v2 } }]\n    redirect: { uri: /elsewhere }\n`)));
    const error = await rejected;
    expect(error.message).toContain('VirtualService shop/reviews: spec.http[0]: HTTP route cannot contain both route and redirect');
    expect(await get(mesh, '/')).toEqual({ status: 200, pod: '127.0.0.2' });
  });

  it('routes on withoutHeaders regex "*" as Istio does: only requests without the header match', async () => {
    mesh = await createMesh({
      namespace: 'shop',
      config: yamlDocs(
        reviews() +
          route(`  - name: stable
    match: [{ withoutHeaders: { x-canary: { regex: "*" } } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - name: canary
    route: [{ destination: { host: reviews, subset: v2 } }]
`),
      ).map((d) => d.value as InlineConfig),
      watch: false,
      dns: false,
    });
    expect(await get(mesh, '/')).toEqual({ status: 200, pod: '127.0.0.2' });
    expect(await get(mesh, '/', { 'x-canary': '' })).toEqual({ status: 200, pod: '127.0.0.3' });
    expect(await get(mesh, '/', { 'x-canary': 'yes' })).toEqual({ status: 200, pod: '127.0.0.3' });
  });
});

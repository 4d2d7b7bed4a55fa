import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { runCli } from '../src/cli/run-cli.js';
import type { Mesh } from '../src/index.js';
import { UnknownHostError, createMesh } from '../src/index.js';
import { Pods } from './helpers/pods.js';

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

const EXAMPLE = 'examples/shop/mesh';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sidecarless-cli-'));
  await writeFile(
    join(dir, 'bad.yaml'),
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews }
    retries: { attempts: 3, perTryTimeout: soon }
`,
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('sidecarless validate', () => {
  it('exits 0 on the example configuration', async () => {
    const r = await run('validate', '--namespace', 'shop', EXAMPLE);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^valid: 10 resource\(s\)/);
  });

  it('exits 1 and names file, line, resource and field of an invalid resource', async () => {
    const r = await run('validate', dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.yaml:9');
    expect(r.stderr).toContain('VirtualService shop/reviews');
    expect(r.stderr).toContain('spec.http[0].retries.perTryTimeout');
    expect(r.stdout).toMatch(/^invalid: 1 error/);
  });

  it('takes a balancer policy the application registers on trust, and still checks what a cluster would refuse', async () => {
    const rules = await mkdtemp(join(tmpdir(), 'sidecarless-cli-balancers-'));
    onTestFinished(() => rm(rules, { recursive: true, force: true }));
    const rule = (name: string, annotation: string, policy: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop, annotations: { ${annotation} } }
spec:
  host: ${name}
  trafficPolicy: { loadBalancer: ${policy} }
`;
    await writeFile(join(rules, 'own.yaml'), rule('reviews', 'sidecarless.io/load-balancer: MY_OWN_POLICY', '{ simple: ROUND_ROBIN }'));
    expect((await run('validate', rules)).code).toBe(0);
    await writeFile(join(rules, 'ring.yaml'), rule('ratings', '', '{ consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 9000000 } } }'));
    const r = await run('validate', rules);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'DestinationRule shop/ratings: spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize: expected a ring size of at most 8388608',
    );
  });

  it('prints machine-readable findings with --format json', async () => {
    const r = await run('validate', '--format', 'json', dir);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { valid: boolean; errors: { path: string; location: { line: number } }[] };
    expect(report.valid).toBe(false);
    expect(report.errors[0]?.path).toBe('spec.http[0].retries.perTryTimeout');
    expect(report.errors[0]?.location.line).toBe(9);
  });

  it('lists resources of kinds it does not read as not read, never as valid', async () => {
    const mixed = join(dir, 'mixed');
    await mkdir(mixed);
    await writeFile(
      join(mixed, 'mesh.yaml'),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }] }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: shop }
spec: {}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ingress, namespace: shop }
spec:
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
`,
    );
    const r = await run('validate', mixed);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('valid: 1 resource(s), 0 warning(s); not read: 2 resource(s) of kinds sidecarless does not read, neither validated nor applied:');
    expect(lines[1]).toMatch(/^ {2}Telemetry shop\/mesh-default \(.*mesh\.yaml:\d+\): Telemetry is not implemented yet and is ignored/);
    expect(lines[2]).toMatch(/^ {2}Gateway shop\/ingress \(.*mesh\.yaml:\d+\): Gateway does not apply to an in-process mesh and is ignored/);

    const only = join(dir, 'only-unread');
    await mkdir(only);
    await writeFile(
      join(only, 'jwt.yaml'),
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: jwt, namespace: shop }
spec: {}
`,
    );
    const alone = await run('validate', only);
    expect(alone.code).toBe(0);
    expect(alone.stdout).toMatch(/^nothing validated: no resource of a kind sidecarless reads, 0 warning\(s\); not read: 1 resource\(s\)/);
    expect(alone.stdout).not.toMatch(/^valid/m);
    const json = JSON.parse((await run('validate', '--format', 'json', only)).stdout) as { valid: boolean; notRead: { kind: string; name: string }[] };
    expect(json.valid).toBe(false);
    expect(json.notRead).toMatchObject([{ kind: 'Telemetry', name: 'jwt' }]);
  });

  it('exits 2 on usage errors', async () => {
    expect((await run('validate')).code).toBe(2);
    expect((await run('validate', '--format', 'yaml', EXAMPLE)).code).toBe(2);
    expect((await run('validate', '--bogus', EXAMPLE)).code).toBe(2);
    expect((await run('frobnicate')).code).toBe(2);
  });

  it('exits 1 when a path does not exist', async () => {
    const r = await run('validate', join(dir, 'missing'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('missing');
  });
});

describe('sidecarless explain', () => {
  it('shows the matching route, weights, merged policy and endpoints', async () => {
    const r = await run('explain', '--config', EXAMPLE, '--namespace', 'shop', 'GET', 'http://reviews:9080/reviews/1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('VirtualService:  shop/reviews');
    expect(r.stdout).toContain('spec.http[1] "canary"');
    expect(r.stdout).toContain('80.0%  reviews.shop.svc.cluster.local:9080 subset v1');
    expect(r.stdout).toContain('20.0%  reviews.shop.svc.cluster.local:9080 subset v3');
    expect(r.stdout).toContain('127.0.0.3:9080');
    expect(r.stdout).not.toContain('127.0.0.5:9080');
    expect(r.stdout).toContain('timeout:         2s');
  });

  it('follows header-based routing given with -H', async () => {
    const r = await run('explain', '-c', EXAMPLE, '-n', 'shop', '-H', 'end-user: jason', '--format', 'json', 'GET', 'http://reviews:9080/');
    expect(r.code).toBe(0);
    const e = JSON.parse(r.stdout) as { route: { name: string }; destinations: { subset: string; trafficPolicy: unknown; endpoints: { address: string }[] }[] };
    expect(e.route.name).toBe('tester');
    expect(e.destinations[0]?.subset).toBe('v2');
    // Subset v2 replaces the load balancer, keeps the top-level outlier detection.
    expect(e.destinations[0]?.trafficPolicy).toEqual({
      loadBalancer: { simple: 'ROUND_ROBIN' },
      outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
    });
    expect(e.destinations[0]?.endpoints.map((x) => x.address)).toEqual(['127.0.0.5', '127.0.0.6']);
  });

  it('exits 2 without --config or with a bad URL', async () => {
    expect((await run('explain', 'GET', 'http://reviews/')).code).toBe(2);
    expect((await run('explain', '-c', EXAMPLE, 'GET', 'reviews')).code).toBe(2);
  });
});

describe('sidecarless explain says everything that decides', () => {
  let pods: Pods;
  let config: string;
  let mesh: Mesh | undefined;
  /** The same configuration with the Sidecar's outbound policy set to `mode`. */
  const write = async (mode: 'ALLOW_ANY' | 'REGISTRY_ONLY') => {
    config = join(dir, `decides-${mode}`);
    await mkdir(config, { recursive: true });
    await writeFile(
      join(config, 'mesh.yaml'),
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: partner, namespace: other }
spec:
  hosts: [api.partner.example]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: gone
    match: [{ uri: { prefix: /gone } }]
    route: [{ destination: { host: reviews, subset: v9 } }]
  - name: mirrored
    match: [{ uri: { prefix: /mirrored } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
    mirror: { host: reviews, subset: v2 }
    mirrorPercentage: { value: 25 }
  - name: canary
    route:
    - { destination: { host: reviews, subset: v1 }, weight: 80 }
    - { destination: { host: reviews, subset: v9 }, weight: 20 }
    mirrors: [{ destination: { host: reviews, subset: v2 } }, { destination: { host: reviews, subset: v8 }, percentage: { value: 5 } }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: shop }
spec:
  egress: [{ hosts: ["./*"] }]
  outboundTrafficPolicy: { mode: ${mode} }
`,
    );
  };
  const explain = (url: string) => run('explain', '-c', config, '-n', 'shop', 'GET', url);

  beforeAll(async () => {
    pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  });
  afterEach(async () => {
    await mesh?.close();
    mesh = undefined;
  });
  afterAll(() => pods.close());

  it('REGISTRY_ONLY: a host outside the registry is shown refused, as the mesh refuses it', async () => {
    await write('REGISTRY_ONLY');
    const unknown = await explain('http://www.example.com/');
    expect(unknown.code).toBe(0);
    expect(unknown.stdout).toContain('  egress:          Sidecar shop/default, REGISTRY_ONLY: refused');
    expect(unknown.stdout).toContain(
      '  outcome:         refused before it leaves the process: "www.example.com" is not in the service registry and outboundTrafficPolicy is REGISTRY_ONLY (Sidecar shop/default): the call rejects with UnknownHostError (ERR_MESH_UNKNOWN_HOST)',
    );
    expect(unknown.stdout).not.toContain('->');
    // A ServiceEntry of another namespace the Sidecar does not import is outside the registry too.
    const hidden = await explain('http://api.partner.example/');
    expect(hidden.stdout).toContain('(ServiceEntry other/partner declares it, but the egress hosts of Sidecar shop/default do not import it)');
    expect(hidden.stdout).toContain('outcome:         refused before it leaves the process');
    const known = await explain(`http://reviews:${pods.port}/`);
    expect(known.stdout).toContain('  egress:          Sidecar shop/default, REGISTRY_ONLY: in the registry: ServiceEntry shop/reviews');
    const json = JSON.parse((await run('explain', '-c', config, '-n', 'shop', '-o', 'json', 'GET', 'http://www.example.com/')).stdout) as {
      egress: unknown;
      destinations: unknown[];
    };
    expect(json.egress).toMatchObject({
      sidecar: { kind: 'Sidecar', namespace: 'shop', name: 'default' },
      outboundTrafficPolicy: 'REGISTRY_ONLY',
      decision: 'refused',
    });
    expect(json.destinations).toEqual([]);

    // What explain says is what the mesh does.
    mesh = await createMesh({ namespace: 'shop', config: [config], watch: false, dns: false });
    await expect(mesh.request('http://www.example.com/')).rejects.toBeInstanceOf(UnknownHostError);
    await expect(mesh.request('http://api.partner.example/')).rejects.toBeInstanceOf(UnknownHostError);
  });

  it('ALLOW_ANY: a host outside the registry is shown passed through as named', async () => {
    await write('ALLOW_ANY');
    const r = await explain('http://www.example.com/');
    expect(r.stdout).toContain(
      '  egress:          Sidecar shop/default, ALLOW_ANY: not in the service registry; ALLOW_ANY (Sidecar shop/default) passes the call through to "www.example.com" as named',
    );
    expect(r.stdout).toContain('endpoints:       none (passed through: the connection goes to the host the caller named)');
    expect(r.stdout).not.toContain('outcome:');
  });

  it('a destination whose subset is undefined: the 503 up front, with the subsets that are defined', async () => {
    await write('ALLOW_ANY');
    const r = await explain(`http://reviews:${pods.port}/`);
    const lines = r.stdout.split('\n');
    const outcome = lines.findIndex((l) => l.startsWith('  outcome:'));
    expect(lines[outcome]).toBe(
      '  outcome:         503 "no healthy upstream" for 20.0% of requests: subset "v9" of reviews.shop.svc.cluster.local is not defined by DestinationRule shop/reviews (defined: v1, v2)',
    );
    expect(outcome).toBeGreaterThan(0);
    expect(outcome).toBeLessThan(lines.findIndex((l) => l.includes('->')));
    expect(r.stdout).toContain('20.0%  reviews.shop.svc.cluster.local');

    // The mesh answers that 503 for a route to the undefined subset.
    mesh = await createMesh({ namespace: 'shop', config: [config], watch: false, dns: false });
    const res = await mesh.request(`http://reviews:${pods.port}/gone`);
    expect(res.statusCode).toBe(503);
    expect(await res.body.text()).toContain('no healthy upstream');
    const gone = await explain(`http://reviews:${pods.port}/gone`);
    expect(gone.stdout).toContain('outcome:         503 "no healthy upstream" for 100.0% of requests: subset "v9"');
  });

  it('shows mirrors with their mirrorPercentage', async () => {
    await write('ALLOW_ANY');
    const r = await explain(`http://reviews:${pods.port}/mirrored`);
    expect(r.stdout).toContain('  mirror:          25.0% of requests copied to reviews.shop.svc.cluster.local subset v2');
    const all = await explain(`http://reviews:${pods.port}/`);
    expect(all.stdout).toContain('  mirror:          100.0% of requests copied to reviews.shop.svc.cluster.local subset v2');
    expect(all.stdout).toContain(
      '  mirror:          5.0% of requests copied to reviews.shop.svc.cluster.local subset v8 (subset "v8" is not defined: no copy is sent)',
    );
    const json = JSON.parse((await run('explain', '-c', config, '-n', 'shop', '-o', 'json', 'GET', `http://reviews:${pods.port}/`)).stdout) as {
      mirrors: unknown;
    };
    expect(json.mirrors).toEqual([
      { host: 'reviews.shop.svc.cluster.local', subset: 'v2', percent: 100 },
      { host: 'reviews.shop.svc.cluster.local', subset: 'v8', percent: 5, note: 'subset "v8" is not defined: no copy is sent' },
    ]);
  });
});

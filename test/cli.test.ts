import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/run-cli.js';

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
  await writeFile(join(dir, 'bad.yaml'), `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews }
    retries: { attempts: 3, perTryTimeout: soon }
`);
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

  it('prints machine-readable findings with --format json', async () => {
    const r = await run('validate', '--format', 'json', dir);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { valid: boolean; errors: { path: string; location: { line: number } }[] };
    expect(report.valid).toBe(false);
    expect(report.errors[0]?.path).toBe('spec.http[0].retries.perTryTimeout');
    expect(report.errors[0]?.location.line).toBe(9);
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

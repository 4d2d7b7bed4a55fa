import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh, MeshOptions, RateLimitStoreError } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RedisServer } from '../helpers/redis.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('redis-server');

let pods: Pods;
let redis: RedisServer;
const meshes: Mesh[] = [];
/** Requests the pod received, by first path segment. */
const hits = new Map<string, number>();

/**
 * Where Redis is up, these tests are about sharing, not about Redis being slow: on a loaded machine
 * an answer can take longer than the default 100 ms, after which a limit falls back to a bucket per
 * process (tested below, with Redis down).
 */
const PATIENT = 10_000;

/** Each test run gets fresh Redis keys: the limits' ids carry the run's prefix. */
const prefix = `test-${process.pid}-${Date.now()}`;

const config = (port: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: orders, namespace: shop }
spec:
  hosts: [orders.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2 }]
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: orders, namespace: shop }
spec:
  host: orders
  limits:
  - name: shared-budget
    match: { routes: [default], methods: [GET] }
    scope: SHARED
    tokenBucket: { maxTokens: 6, fillInterval: 1h }
  - name: per-user
    match: { methods: [POST] }
    key: { header: x-user }
    scope: SHARED
    tokenBucket: { maxTokens: 2, fillInterval: 1h }
`;

async function mesh(options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  const m = await meshFromYaml(config(pods.port), { namespace: 'shop', dns: false, ...options });
  meshes.push(m);
  return m;
}

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  pods.behave = (req) => {
    const first = (req.url ?? '/').split('/')[1] ?? '';
    hits.set(first, (hits.get(first) ?? 0) + 1);
    return false;
  };
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const m of meshes) await m.close();
  await pods?.close();
  await redis?.close();
});

async function status(m: Mesh, path: string, init: RequestInit = {}): Promise<number> {
  const res = await m.fetch(`http://orders:${pods.port}${path}`, init as Parameters<Mesh['fetch']>[1]);
  await res.arrayBuffer();
  return res.status;
}

describe('a SHARED limit', () => {
  it('is one budget for two replicas sharing a redis-server', async () => {
    const keyPrefix = `${prefix}-a`;
    const a = await mesh({ rateLimit: { redis: { url: redis.url }, keyPrefix, redisTimeoutMs: PATIENT } });
    const b = await mesh({ rateLimit: { redis: { url: redis.url }, keyPrefix, redisTimeoutMs: PATIENT } });
    hits.set('budget', 0);
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) seen.push(await status(i % 2 === 0 ? a : b, '/budget'));
    expect(seen).toEqual([200, 200, 200, 200, 200, 200]);
    // Both replicas are now refused: the budget of 6 is spent between them, not 6 each.
    expect(await status(a, '/budget')).toBe(429);
    expect(await status(b, '/budget')).toBe(429);
    expect(hits.get('budget')).toBe(6);
  });

  it('is keyed across replicas', async () => {
    const keyPrefix = `${prefix}-b`;
    const a = await mesh({ rateLimit: { redis: { url: redis.url }, keyPrefix, redisTimeoutMs: PATIENT } });
    const b = await mesh({ rateLimit: { redis: { url: redis.url }, keyPrefix, redisTimeoutMs: PATIENT } });
    const post = (m: Mesh, user: string) => status(m, '/keyed', { method: 'POST', headers: { 'x-user': user } });
    expect([await post(a, 'alice'), await post(b, 'alice'), await post(a, 'alice')]).toEqual([200, 200, 429]);
    expect([await post(b, 'bob'), await post(a, 'bob'), await post(b, 'bob')]).toEqual([200, 200, 429]);
  });

  it('without Redis configured is enforced per process, and says so once per limit', async () => {
    const errors: RateLimitStoreError[] = [];
    const m = await meshFromYaml(config(pods.port), { namespace: 'shop', dns: false });
    meshes.push(m);
    m.on('rateLimitError', (e) => errors.push(e));
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) seen.push(await status(m, '/local'));
    expect(seen).toEqual([200, 200, 200, 200, 200, 200, 429]);
    expect(errors.map((e) => [e.code, e.limit])).toEqual([
      ['ERR_MESH_RATE_LIMIT_STORE', 'shop/orders/shared-budget'],
      ['ERR_MESH_RATE_LIMIT_STORE', 'shop/orders/per-user'],
    ]);
    expect(errors[0]?.message).toMatch(/needs Redis \(createMesh option rateLimit\.redis\); the limit is enforced per process/);
  });
});

describe('when Redis is down', () => {
  it('falls back to a bucket per process, reports it, and shares again once Redis is back', async () => {
    const down = await RedisServer.start();
    await down.stop();
    const errors: RateLimitStoreError[] = [];
    const m = await mesh({ rateLimit: { redis: { url: down.url }, keyPrefix: `${prefix}-c`, redisTimeoutMs: 50, redisRetryMs: 50 } });
    m.on('rateLimitError', (e) => errors.push(e));
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) seen.push(await status(m, '/down'));
    // The local fallback has the limit's own size: still limited, never crashing or failing open.
    expect(seen).toEqual([200, 200, 200, 200, 200, 200, 429]);
    const unreachable = errors.find((e) => e.limit === 'shop/orders/shared-budget');
    expect(unreachable?.message).toMatch(/Redis is unreachable \(.+\); the limit is enforced per process/);

    await down.restart();
    try {
      // Once Redis answers, the budget is Redis's again (a fresh, full reservoir).
      let recovered = false;
      for (let i = 0; i < 200 && !recovered; i++) {
        await status(m, '/down');
        recovered = errors.some((e) => /answers again/.test(e.message));
        if (!recovered) await new Promise((r) => setTimeout(r, 25));
      }
      expect(recovered).toBe(true);
    } finally {
      await down.close();
    }
  }, 20_000);
});

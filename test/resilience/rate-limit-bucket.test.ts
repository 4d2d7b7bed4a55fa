import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigSource, Mesh, RawDocument, SourceUpdate } from '../../src/index.js';
import { createMesh, LocalLimiter } from '../../src/index.js';
import { TokenBucket } from '../../src/resilience/rate-limit/token-bucket.js';
import { docs, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { TestClock } from '../helpers/test-clock.js';

describe('TokenBucket (Envoy local rate limit semantics)', () => {
  const spec = { maxTokens: 3, tokensPerFill: 2, fillIntervalMs: 1_000 };

  it('starts full, takes one token per request, refuses when empty', () => {
    const bucket = new TokenBucket(spec, 0);
    expect([bucket.tryTake(0), bucket.tryTake(0), bucket.tryTake(0), bucket.tryTake(0)]).toEqual([true, true, true, false]);
    expect(bucket.remaining(0)).toBe(0);
  });

  it('adds tokensPerFill at each whole fill interval, on the phase it started with, capped at maxTokens', () => {
    const bucket = new TokenBucket(spec, 100);
    for (let i = 0; i < 3; i++) bucket.tryTake(100);
    expect(bucket.tryTake(1_099)).toBe(false);
    expect(bucket.msUntilFill(1_099)).toBe(1);
    expect(bucket.remaining(1_100)).toBe(2);
    expect(bucket.msUntilFill(1_600)).toBe(500);
    // Three intervals later: 2 + 3 * 2, capped at 3.
    expect(bucket.remaining(4_100)).toBe(3);
  });
});

describe('LocalLimiter', () => {
  it('keeps one bucket per key and forgets the least recently used past maxKeys', () => {
    const limiter = new LocalLimiter({ maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 60_000 }, 2);
    expect(limiter.tryTake('a', 0).allowed).toBe(true);
    expect(limiter.tryTake('b', 0).allowed).toBe(true);
    expect(limiter.tryTake('a', 0).allowed).toBe(false); // a is now the most recently used
    expect(limiter.tryTake('c', 0).allowed).toBe(true); // evicts b
    expect(limiter.size).toBe(2);
    expect(limiter.tryTake('a', 0).allowed).toBe(false); // a kept its empty bucket
    expect(limiter.tryTake('b', 0).allowed).toBe(true); // b comes back with a full one
    for (let i = 0; i < 10_000; i++) limiter.tryTake(`user-${i}`, 0);
    expect(limiter.size).toBe(2);
  });

  it('says what the headers need: limit, remaining, time to the next fill', () => {
    const limiter = new LocalLimiter({ maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 10_000 });
    expect(limiter.tryTake('', 0)).toEqual({ allowed: true, limit: 2, remaining: 1, resetMs: 10_000 });
    expect(limiter.tryTake('', 2_500)).toEqual({ allowed: true, limit: 2, remaining: 0, resetMs: 7_500 });
    expect(limiter.tryTake('', 2_500)).toEqual({ allowed: false, limit: 2, remaining: 0, resetMs: 7_500 });
  });
});

/** A source a test can push new content through, as a watched file or the Kubernetes API would. */
class PushSource implements ConfigSource {
  readonly id = 'push';
  private onUpdate: ((update: SourceUpdate) => void) | undefined;
  constructor(private documents: RawDocument[]) {}
  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    this.onUpdate = onUpdate;
    onUpdate({ source: this.id, documents: this.documents, issues: [] });
  }
  push(documents: RawDocument[]): void {
    this.documents = documents;
    this.onUpdate?.({ source: this.id, documents, issues: [] });
  }
  async close(): Promise<void> {}
}

describe('buckets across configuration changes', () => {
  let pods: Pods;
  let mesh: Mesh;
  let source: PushSource;
  const clock = new TestClock({ now: 0 });
  const yaml = (maxTokens: number, extra = '') => `
${reviewsServiceEntry(pods.port, ['127.0.0.2'])}---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  limits:
  - name: all
    tokenBucket: { maxTokens: ${maxTokens}, fillInterval: 1h }
${extra}`;
  const asDocs = (text: string): RawDocument[] => docs(text).map((value, i) => ({ value, location: { file: `push[${i}]` } }));

  beforeAll(async () => {
    pods = await Pods.start(['127.0.0.2']);
    source = new PushSource(asDocs(yaml(2)));
    mesh = await createMesh({ namespace: 'shop', sources: [source], clock, dns: false });
  });
  afterAll(async () => {
    await mesh?.close();
    await pods?.close();
  });

  async function statuses(n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const res = await mesh.fetch(`http://reviews:${pods.port}/`);
      await res.arrayBuffer();
      out.push(res.status);
    }
    return out;
  }

  async function apply(text: string): Promise<void> {
    const next = new Promise((r) => mesh.once('snapshot', r));
    source.push(asDocs(text));
    await next;
  }

  it('keeps a limit’s buckets through an unrelated change, and starts anew when the limit changes', async () => {
    expect(await statuses(3)).toEqual([200, 200, 429]);
    await apply(
      yaml(
        2,
        '---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: other, namespace: shop }\nspec: { hosts: [other.example.com], ports: [{ number: 80, name: http, protocol: HTTP }], resolution: DNS }\n',
      ),
    );
    expect(await statuses(1)).toEqual([429]);
    await apply(yaml(3));
    expect(await statuses(4)).toEqual([200, 200, 200, 429]);
  });
});

describe('loading', () => {
  it('imports bottleneck and ioredis only dynamically, so a mesh without SHARED limits never loads them', () => {
    const root = resolve(import.meta.dirname, '../../src');
    const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    const staticImports = files.filter((f) => /^import\s+(?!type\b)[^;]*from\s+'(bottleneck|ioredis)'/m.test(readFileSync(join(root, f), 'utf8')));
    const dynamicImports = files.filter((f) => /import\('(bottleneck|ioredis)'\)/.test(readFileSync(join(root, f), 'utf8')));
    expect(staticImports).toEqual([]);
    expect(dynamicImports).toEqual(['resilience/rate-limit/shared-store.ts']);
  });
});

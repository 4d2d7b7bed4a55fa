import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { formatIssue } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { TestClock } from '../helpers/test-clock.js';

let pods: Pods;
let pods2: Pods;
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  pods2 = await Pods.start(['127.0.0.2']);
});
afterAll(async () => {
  for (const m of meshes) await m.close();
  await pods?.close();
  await pods2?.close();
});

const services = () => `
${reviewsServiceEntry(pods.port, ['127.0.0.2'])}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }, { number: ${pods2.port}, name: http-2, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: checkout
    match: [{ uri: { prefix: /checkout } }]
    route: [{ destination: { host: reviews } }]
  - name: browse
    route: [{ destination: { host: reviews } }]
`;

/** Istio's documented local rate limit, for the outbound side, in the TypedStruct wrapper its docs use. */
const istioDocsFilter = (extra = '') => `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-local-ratelimit, namespace: istio-system }
spec:
  workloadSelector:
    labels: { app: productpage }
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_OUTBOUND
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          value:
            stat_prefix: http_local_rate_limiter
            token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }
            filter_enabled:
              runtime_key: local_rate_limit_enabled
              default_value: { numerator: 100, denominator: HUNDRED }
            filter_enforced:
              runtime_key: local_rate_limit_enforced
              default_value: { numerator: 100, denominator: HUNDRED }
            response_headers_to_add:
            - append: false
              header: { key: x-local-rate-limit, value: 'true' }
${extra}`;

async function meshWith(yaml: string, labels: Record<string, string> = { app: 'productpage' }): Promise<Mesh> {
  const m = await meshFromYaml(`${services()}\n---\n${yaml}`, {
    namespace: 'shop',
    labels,
    clock: new TestClock({ now: 5_000 }),
    random: seededRandom(3),
    dns: false,
  });
  meshes.push(m);
  return m;
}

async function call(m: Mesh, url: string): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await m.fetch(url);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

async function statuses(m: Mesh, n: number, url: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await call(m, url)).status);
  return out;
}

describe('EnvoyFilter local rate limit (envoy.filters.http.local_ratelimit)', () => {
  it("enforces Istio's documented shape for the workloads it selects, with the headers it asks for", async () => {
    const m = await meshWith(istioDocsFilter());
    expect(await statuses(m, 2, `http://reviews:${pods.port}/a`)).toEqual([200, 200]);
    const refused = await call(m, `http://reviews:${pods.port}/a`);
    expect(refused.status).toBe(429);
    expect(refused.body).toBe('local_rate_limited');
    expect(refused.headers.get('x-local-rate-limit')).toBe('true');
    expect(refused.headers.get('x-ratelimit-limit')).toBe('2');
    expect(refused.headers.get('retry-after')).toBe('60');
  });

  it('does nothing for a workload its selector does not match', async () => {
    const m = await meshWith(istioDocsFilter(), { app: 'details' });
    expect(await statuses(m, 5, `http://reviews:${pods.port}/a`)).toEqual([200, 200, 200, 200, 200]);
  });

  it('has one bucket per outbound listener (port), as each Envoy listener has its own filter', async () => {
    const m = await meshWith(istioDocsFilter());
    // reviews and ratings share the listener of pods.port: one budget of 2 between them.
    expect(await statuses(m, 1, `http://reviews:${pods.port}/a`)).toEqual([200]);
    expect(await statuses(m, 2, `http://ratings:${pods.port}/a`)).toEqual([200, 429]);
    // Another port is another listener with a full bucket.
    expect(await statuses(m, 3, `http://ratings:${pods2.port}/a`)).toEqual([200, 200, 429]);
  });

  it('listener.portNumber puts the filter on that port only', async () => {
    const yaml = istioDocsFilter().replace('      listener:\n', `      listener:\n        portNumber: ${pods2.port}\n`);
    const m = await meshWith(yaml);
    expect(await statuses(m, 4, `http://ratings:${pods.port}/a`)).toEqual([200, 200, 200, 200]);
    expect(await statuses(m, 3, `http://ratings:${pods2.port}/a`)).toEqual([200, 200, 429]);
  });

  it('is disabled without filter_enabled, and only counts without filter_enforced (Envoy defaults both to 0%)', async () => {
    const disabled = await meshWith(istioDocsFilter().replace(/ {12}filter_enabled:\n.*\n.*\n/, ''));
    expect(await statuses(disabled, 4, `http://reviews:${pods.port}/a`)).toEqual([200, 200, 200, 200]);
    const notEnforced = await meshWith(istioDocsFilter().replace(/ {12}filter_enforced:\n.*\n.*\n/, ''));
    expect(await statuses(notEnforced, 4, `http://reviews:${pods.port}/a`)).toEqual([200, 200, 200, 200]);
  });

  it('reads the direct @type form, camelCase names and a custom status', async () => {
    const m = await meshWith(`
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: direct, namespace: shop }
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match: { context: SIDECAR_OUTBOUND }
    patch:
      operation: INSERT_FIRST
      value:
        name: envoy.filters.http.local_ratelimit
        typedConfig:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          statPrefix: direct
          status: { code: 503 }
          tokenBucket: { maxTokens: 1, fillInterval: 1s }
          filterEnabled: { defaultValue: { numerator: 100 } }
          filterEnforced: { defaultValue: { numerator: 1000000, denominator: MILLION } }
`);
    expect(await statuses(m, 2, `http://reviews:${pods.port}/a`)).toEqual([200, 503]);
  });

  it('applies a per-route configuration (HTTP_ROUTE) to its route only, with its own bucket', async () => {
    const m = await meshWith(
      istioDocsFilter(`
  - applyTo: HTTP_ROUTE
    match:
      context: SIDECAR_OUTBOUND
      routeConfiguration:
        vhost:
          name: reviews.shop.svc.cluster.local:${pods.port}
          route: { name: checkout }
    patch:
      operation: MERGE
      value:
        typed_per_filter_config:
          envoy.filters.http.local_ratelimit:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value:
              stat_prefix: checkout
              token_bucket: { max_tokens: 1, fill_interval: 60s }
              filter_enabled: { default_value: { numerator: 100 } }
              filter_enforced: { default_value: { numerator: 100 } }
`).replace('max_tokens: 2, tokens_per_fill: 2', 'max_tokens: 3, tokens_per_fill: 3'),
    );
    expect(await statuses(m, 2, `http://reviews:${pods.port}/checkout`)).toEqual([200, 429]);
    // The listener-wide bucket (3) was not touched by the checkout route.
    expect(await statuses(m, 4, `http://reviews:${pods.port}/browse`)).toEqual([200, 200, 200, 429]);
  });

  it('compiles SIDECAR_INBOUND limits for the inbound side without enforcing them on calls', async () => {
    const m = await meshWith(istioDocsFilter().replace('context: SIDECAR_OUTBOUND', 'context: SIDECAR_INBOUND'));
    expect(await statuses(m, 4, `http://reviews:${pods.port}/a`)).toEqual([200, 200, 200, 200]);
    expect(m.snapshot.rateLimits.inbound.map((l) => [l.name, l.bucket.maxTokens])).toEqual([
      ['istio-system/filter-local-ratelimit spec.configPatches[0] (http_local_rate_limiter)', 2],
    ]);
  });

  it('reports every other patch and EnvoyFilter as not applied, without an error', async () => {
    const lua = `
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: lua, namespace: shop }
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match: { context: SIDECAR_INBOUND }
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          inlineCode: "function envoy_on_request(h) end"
`;
    const mixed = `
  - applyTo: CLUSTER
    match: { context: SIDECAR_OUTBOUND }
    patch:
      operation: MERGE
      value: { connect_timeout: 1s }
`;
    const m = await meshWith(istioDocsFilter(mixed) + lua);
    const warnings = m.snapshot.warnings.map(formatIssue);
    expect(warnings.some((w) => /EnvoyFilter shop\/lua: kind: EnvoyFilter does not apply to an in-process mesh and is ignored/.test(w))).toBe(true);
    expect(
      warnings.some((w) =>
        /EnvoyFilter istio-system\/filter-local-ratelimit: spec\.configPatches\[1\]: patch not applied: sidecarless applies only patches/.test(w),
      ),
    ).toBe(true);
    // The rate-limit patch of the mixed EnvoyFilter still applies.
    expect(await statuses(m, 3, `http://reviews:${pods.port}/a`)).toEqual([200, 200, 429]);
  });
});

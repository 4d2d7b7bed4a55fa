import { afterEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import type { Integration, TestApp } from '../helpers/inbound-apps.js';
import { call, freePort, INTEGRATIONS, startApp } from '../helpers/inbound-apps.js';
import { TestClock } from '../helpers/test-clock.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { OtelHarness } from '../helpers/otel.js';

const LOCAL_RATE_LIMIT = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const bucket = (tokens: number) => `token_bucket: { max_tokens: ${tokens}, tokens_per_fill: ${tokens}, fill_interval: 60s }
              filter_enabled: { runtime_key: local_rate_limit_enabled, default_value: { numerator: 100, denominator: HUNDRED } }
              filter_enforced: { runtime_key: local_rate_limit_enforced, default_value: { numerator: 100, denominator: HUNDRED } }
              response_headers_to_add: [{ append_action: OVERWRITE_IF_EXISTS_OR_ADD, header: { key: x-local-rate-limit, value: 'true' } }]`;

// Istio's "Enabling Rate Limits using Envoy" task, local rate limit on the inbound listener.
const SERVICE_LIMIT = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-local-ratelimit-svc, namespace: istio-system }
spec:
  workloadSelector: { labels: { app: productpage } }
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager" } } }
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: ${LOCAL_RATE_LIMIT}
          value:
            stat_prefix: http_local_rate_limiter
            ${bucket(4).replace(/\n {14}/g, '\n            ')}
`;
// The same task's per-route form: the filter without a bucket, the route of the inbound vhost with one.
const routeLimit = (port: number) => `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-local-ratelimit-route, namespace: istio-system }
spec:
  workloadSelector: { labels: { app: productpage } }
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager" } } }
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: ${LOCAL_RATE_LIMIT}
          value: { stat_prefix: http_local_rate_limiter }
  - applyTo: HTTP_ROUTE
    match:
      context: SIDECAR_INBOUND
      routeConfiguration: { vhost: { name: "inbound|http|${port}", route: { action: ANY } } }
    patch:
      operation: MERGE
      value:
        typed_per_filter_config:
          envoy.filters.http.local_ratelimit:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: ${LOCAL_RATE_LIMIT}
            value:
              stat_prefix: http_local_rate_limiter
              ${bucket(2)}
`;

let mesh: Mesh | undefined;
let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  await mesh?.close();
  app = undefined;
  mesh = undefined;
});

async function serve(integration: Integration, yaml: string, clock: TestClock, port?: number): Promise<TestApp> {
  mesh = await createMesh({ namespace: 'default', labels: { app: 'productpage' }, certificates: false, dns: false, watch: false, clock, config: docs(yaml) });
  app = await startApp(mesh, integration, port === undefined ? {} : { port });
  return app;
}

describe.each(INTEGRATIONS)('inbound local rate limits through %s', (integration) => {
  it("Istio's task: the fifth request in a minute is 429 local_rate_limited with Envoy's headers; the bucket refills", async () => {
    const clock = new TestClock();
    const { port, hits } = await serve(integration, SERVICE_LIMIT, clock);
    for (let i = 0; i < 4; i++) expect((await call(port, '/productpage')).status).toBe(200);
    const refused = await call(port, '/productpage');
    expect([refused.status, refused.body]).toEqual([429, 'local_rate_limited']);
    expect(refused.headers).toMatchObject({
      'x-local-rate-limit': 'true',
      'x-ratelimit-limit': '4',
      'x-ratelimit-remaining': '0',
      'retry-after': '60',
      'x-ratelimit-reset': '60',
    });
    expect(hits.get('catch-all')).toBe(4);
    clock.advance(60_000);
    expect((await call(port, '/productpage')).status).toBe(200);
  });
});

describe('inbound local rate limits', () => {
  it("per route: the inbound virtual host's route configuration has its own bucket", async () => {
    const clock = new TestClock();
    const port = await freePort();
    const a = await serve('http', routeLimit(port), clock, port);
    expect([(await call(a.port, '/')).status, (await call(a.port, '/')).status, (await call(a.port, '/')).status]).toEqual([200, 200, 429]);
  });

  it('a refusal is counted in sidecarless.inbound.denied and Istio metrics carry response_flags RL', async () => {
    const otel = new OtelHarness({ tracing: false });
    try {
      const clock = new TestClock();
      mesh = await createMesh({
        namespace: 'default',
        labels: { app: 'productpage' },
        certificates: false,
        dns: false,
        watch: false,
        clock,
        telemetry: { istioMetrics: true },
        config: docs(SERVICE_LIMIT),
      });
      app = await startApp(mesh, 'http');
      for (let i = 0; i < 5; i++) await call(app.port, '/');
      const denied = await otel.metric('sidecarless.inbound.denied');
      expect(denied.map((p) => [p.attributes['sidecarless.inbound.reason'], p.value])).toEqual([['rate_limit', 1]]);
      const istio = await otel.metric('istio_requests_total');
      expect(istio.map((p) => [p.attributes.reporter, p.attributes.response_code, p.attributes.response_flags, p.value]).sort()).toEqual([
        ['destination', '200', '-', 4],
        ['destination', '429', 'RL', 1],
      ]);
    } finally {
      await otel.shutdown();
    }
  });

  it('a workload the EnvoyFilter does not select is not limited', async () => {
    const clock = new TestClock();
    mesh = await createMesh({
      namespace: 'default',
      labels: { app: 'reviews' },
      certificates: false,
      dns: false,
      watch: false,
      clock,
      config: docs(SERVICE_LIMIT),
    });
    app = await startApp(mesh, 'http');
    for (let i = 0; i < 6; i++) expect((await call(app.port, '/')).status).toBe(200);
  });
});

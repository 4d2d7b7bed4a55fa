import { credentials, status } from '@grpc/grpc-js';
import type { sendUnaryData } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions, meshServerInterceptor } from '../../src/grpc/index.js';
import { callEcho, EchoClient, GrpcPods } from '../helpers/grpc-pods.js';
import type { EchoReply, Outcome } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const insecure = credentials.createInsecure();
const LOCAL_RATE_LIMIT = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

const DENY_OTHER = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-other, namespace: shop }
spec:
  selector: { matchLabels: { app: front } }
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/test.Echo/Other"]
`;

// Istio's "Enabling Rate Limits using Envoy" task, local rate limit on the inbound listener: 2 calls a minute.
const RATE_LIMIT = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-local-ratelimit-svc, namespace: istio-system }
spec:
  workloadSelector: { labels: { app: limited } }
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
            token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }
            filter_enabled: { runtime_key: local_rate_limit_enabled, default_value: { numerator: 100, denominator: HUNDRED } }
            filter_enforced: { runtime_key: local_rate_limit_enforced, default_value: { numerator: 100, denominator: HUNDRED } }
`;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function serve(mesh: Mesh, address: string): Promise<{ pods: GrpcPods; client: EchoClient }> {
  const pods = await GrpcPods.start([address], [meshServerInterceptor(mesh)]);
  const client = new EchoClient(`${address}:${pods.port}`, insecure);
  cleanups.push(
    () => client.close(),
    () => pods.close(),
  );
  return { pods, client };
}

describe('grpc-js servers with the mesh interceptor', () => {
  it('denies a method an AuthorizationPolicy denies with PERMISSION_DENIED, and lets the others through', async () => {
    const mesh = await meshFromYaml(DENY_OTHER, { namespace: 'shop', labels: { app: 'front' }, dns: false });
    cleanups.push(() => mesh.close());
    const { pods, client } = await serve(mesh, '127.0.0.11');
    const allowed = await callEcho(client, 'who');
    expect(allowed.ok).toBe(true);
    const denied = await callEcho(client, 'other');
    expect(denied.ok).toBe(false);
    expect(!denied.ok && denied.code).toBe(status.PERMISSION_DENIED);
    expect(!denied.ok && denied.details).toBe('RBAC: access denied');
    // The service never saw the denied call.
    expect(pods.received.map((r) => r.method)).toEqual(['/test.Echo/Who']);
  });

  it('answers calls over the inbound rate limit with RESOURCE_EXHAUSTED', async () => {
    const mesh = await meshFromYaml(RATE_LIMIT, { namespace: 'shop', labels: { app: 'limited' }, dns: false });
    cleanups.push(() => mesh.close());
    const { pods, client } = await serve(mesh, '127.0.0.12');
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 3; i++) outcomes.push(await callEcho(client));
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.code))).toEqual(['ok', 'ok', status.RESOURCE_EXHAUSTED]);
    expect(pods.received.length).toBe(2);
  });

  it("propagates the caller's deadline to the calls the handler makes through the mesh", async () => {
    const backend = await GrpcPods.start(['127.0.0.13']);
    cleanups.push(() => backend.close());
    const mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: backend, namespace: shop }
spec:
  hosts: [backend.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${backend.port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.13 }]
`,
      { namespace: 'shop', labels: { app: 'front' }, dns: false },
    );
    cleanups.push(() => mesh.close());
    const toBackend = new EchoClient(`mesh:///backend.shop:${backend.port}`, insecure, meshGrpcOptions(mesh));
    cleanups.push(() => toBackend.close());
    const { pods: front, client } = await serve(mesh, '127.0.0.14');
    const hops: Outcome[] = [];
    front.behave = (_call, callback: sendUnaryData<EchoReply>) => {
      // No deadline given here: the inbound call's is in the async context.
      void callEcho(toBackend).then((outcome) => {
        hops.push(outcome);
        callback(
          null,
          outcome.ok ? outcome.reply : { pod: 'front', method: '', metadata: {}, deadlineMs: null, body: outcome.code, peer: null, peerSerial: null },
        );
      });
      return true;
    };

    const answered = await callEcho(client, 'who', {}, Date.now() + 5_000);
    expect(answered.ok).toBe(true);
    const seen = answered.ok ? answered.reply.deadlineMs : null;
    expect(seen).not.toBeNull();
    expect(seen!).toBeLessThanOrEqual(5_000);

    // The backend never answers: the second hop ends with the first hop's deadline.
    const stuck: sendUnaryData<EchoReply>[] = [];
    backend.behave = (_call, callback) => {
      stuck.push(callback);
      return true;
    };
    hops.length = 0;
    const late = await callEcho(client, 'who', {}, Date.now() + 300);
    expect(!late.ok && late.code).toBe(status.DEADLINE_EXCEEDED);
    await new Promise<void>((resolve) => {
      const check = (): void => void (hops.length > 0 ? resolve() : setTimeout(check, 20));
      check();
    });
    expect(!hops[0]!.ok && hops[0]!.code).toBe(status.DEADLINE_EXCEEDED);
  });
});

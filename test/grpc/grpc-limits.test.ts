import { credentials, status } from '@grpc/grpc-js';
import type { sendUnaryData } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, fail, GrpcPods } from '../helpers/grpc-pods.js';
import type { EchoReply } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const insecure = credentials.createInsecure();
const LOCAL_RATE_LIMIT = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

/** A service on its own port (targetPort: the pods' port), one pod, with `policy` as its DestinationRule traffic policy. */
function service(name: string, port: number, target: number, address: string, policy = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC, targetPort: ${target} }]
  endpoints: [{ address: ${address} }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  http:
  - name: all
    retries: { attempts: 3, retryOn: unavailable }
    route: [{ destination: { host: ${name}.shop.svc.cluster.local } }]
${
  policy
    ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop }
spec:
  host: ${name}.shop.svc.cluster.local
  trafficPolicy:
${policy}`
    : ''
}`;
}

/**
 * Resolves once `check` holds, looking again every millisecond for up to about ten seconds: what
 * it waits for may sit behind a retry's back-off (Envoy's 25 ms base, jittered), which is clock
 * time, not turns of the event loop.
 */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  if (!check()) throw new Error('condition never held');
}

describe('client-side limits on gRPC calls: rate limits and DestinationRule connection-pool limits', () => {
  let echo: GrpcPods;
  let mesh: Mesh;
  const clients: EchoClient[] = [];
  const client = (host: string, port: number): EchoClient => {
    const c = new EchoClient(`mesh:///${host}.shop:${port}`, insecure, meshGrpcOptions(mesh));
    clients.push(c);
    return c;
  };
  const received = (method = '/test.Echo/Who'): number => echo.received.filter((r) => r.method === method).length;

  beforeAll(async () => {
    echo = await GrpcPods.start(['127.0.0.2']);
    const p = echo.port;
    mesh = await meshFromYaml(
      `${service('limited', 7001, p, '127.0.0.2')}
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: limited, namespace: shop }
spec:
  host: limited
  limits: [{ name: two-per-hour, tokenBucket: { maxTokens: 2, tokensPerFill: 2, fillInterval: 1h } }]
---
${service('exhausted', 7002, p, '127.0.0.2')}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: exhausted-limit, namespace: shop }
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_OUTBOUND
      listener: { portNumber: 7002, filterChain: { filter: { name: "envoy.filters.network.http_connection_manager" } } }
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": ${LOCAL_RATE_LIMIT}
          stat_prefix: grpc_limit
          token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s }
          filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
          filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }
          rate_limited_as_resource_exhausted: true
---
${service('single', 7003, p, '127.0.0.2', '    connectionPool: { http: { http2MaxRequests: 1 } }\n')}
---
${service('queued', 7004, p, '127.0.0.2', '    connectionPool: { http: { http1MaxPendingRequests: 1 } }\n')}
---
${service('retrycap', 7005, p, '127.0.0.2', '    connectionPool: { http: { maxRetries: 1 } }\n')}
---
${service('budget', 7006, p, '127.0.0.2', '    retryBudget: { percent: 0, minRetryConcurrency: 1 }\n')}
---
${service('free', 7007, p, '127.0.0.2')}
`,
      { namespace: 'shop', dns: false },
    );
  });

  afterEach(() => {
    echo.behave = undefined;
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await mesh?.close();
    await echo?.close();
  });

  describe('rate limits', () => {
    it('a RateLimitPolicy refuses the call over the limit with UNAVAILABLE local_rate_limited, which never reaches a pod and is not retried', async () => {
      const limited = client('limited', 7001);
      const before = received();
      expect((await callEcho(limited)).ok).toBe(true);
      expect((await callEcho(limited)).ok).toBe(true);
      const refused = await callEcho(limited);
      expect(refused.ok).toBe(false);
      if (refused.ok) return;
      // Envoy's local rate limit answers 429, which a gRPC call sees as UNAVAILABLE (the gRPC mapping).
      expect(refused.code).toBe(status.UNAVAILABLE);
      expect(refused.details).toBe('local_rate_limited');
      expect(refused.metadata.get('x-ratelimit-limit')).toEqual(['2']);
      expect(refused.metadata.get('x-ratelimit-remaining')).toEqual(['0']);
      expect(Number(refused.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
      // The route retries on UNAVAILABLE, but a refusal is the mesh's own answer: nothing was sent.
      expect(received() - before).toBe(2);
    });

    it('an outbound EnvoyFilter local rate limit with rate_limited_as_resource_exhausted refuses with RESOURCE_EXHAUSTED', async () => {
      const exhausted = client('exhausted', 7002);
      const before = received();
      expect((await callEcho(exhausted)).ok).toBe(true);
      const refused = await callEcho(exhausted);
      expect(!refused.ok && refused.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(!refused.ok && refused.details).toBe('local_rate_limited');
      expect(received() - before).toBe(1);
    });

    it('a call to a host no limit names is not limited', async () => {
      const free = client('free', 7007);
      for (let i = 0; i < 4; i++) expect((await callEcho(free)).ok).toBe(true);
    });
  });

  describe('connection-pool limits', () => {
    it("http2MaxRequests: a call while another is outstanding gets UNAVAILABLE with Envoy's overflow text, without reaching the pod; the next call after it passes", async () => {
      const single = client('single', 7003);
      const held: sendUnaryData<EchoReply>[] = [];
      echo.behave = (_call, callback) => {
        held.push(callback);
        return true;
      };
      const before = received();
      const first = callEcho(single);
      await until(() => held.length === 1);
      const second = await callEcho(single);
      expect(second.ok).toBe(false);
      if (second.ok) return;
      expect(second.code).toBe(status.UNAVAILABLE);
      expect(second.details).toBe('upstream connect error or disconnect/reset before headers. reset reason: overflow');
      expect(second.metadata.get('x-envoy-overloaded')).toEqual(['true']);
      expect(second.metadata.get('x-sidecarless-overflow')).toEqual(['connectionPool.http.http2MaxRequests=1']);
      expect(received() - before).toBe(1);
      echo.behave = undefined;
      held[0]!(null, { pod: '127.0.0.2', method: '/test.Echo/Who', metadata: {}, deadlineMs: null, body: null, peer: null, peerSerial: null });
      expect((await first).ok).toBe(true);
      // The first call counted off when it ended: a new one is admitted.
      expect((await callEcho(single)).ok).toBe(true);
    });

    it('http1MaxPendingRequests: a second call while the first still waits to be put on a connection overflows', async () => {
      const queued = client('queued', 7004);
      const before = received();
      // Both start in one turn, before the new channel's first pick (its resolver answers on the next tick): the first is pending, the second finds the queue full.
      const [first, second] = await Promise.all([callEcho(queued), callEcho(queued)]);
      expect(first.ok).toBe(true);
      expect(!second.ok && second.code).toBe(status.UNAVAILABLE);
      expect(!second.ok && second.metadata.get('x-sidecarless-overflow')).toEqual(['connectionPool.http.http1MaxPendingRequests=1']);
      expect(received() - before).toBe(1);
      // Connected now, the calls are not pending: one after the other they pass.
      expect((await callEcho(queued)).ok).toBe(true);
      expect((await callEcho(queued)).ok).toBe(true);
    });

    it.each([
      ['maxRetries', 'retrycap', 7005],
      ['retryBudget', 'budget', 7006],
    ] as const)('%s bounds the retries in flight: a second call retrying meanwhile gets its own answer, not a retry', async (_limit, host, port) => {
      const capped = client(host, port);
      // Calls 1 and 3 fail with UNAVAILABLE; call 2 (the first call's retry) waits; call 4 fails and call 5 passes.
      let n = 0;
      let heldRetry: sendUnaryData<EchoReply> | undefined;
      echo.behave = (_call, callback) => {
        n++;
        if (n === 1 || n === 3 || n === 4) return fail(callback, status.UNAVAILABLE, `pod failed call ${n}`);
        if (n === 2) {
          heldRetry = callback;
          return true;
        }
        return false;
      };
      const first = callEcho(capped);
      await until(() => heldRetry !== undefined);
      // The first call's retry is in flight: the second call's retry is refused by the cluster's limit.
      const second = await callEcho(capped);
      expect(!second.ok && second.code).toBe(status.UNAVAILABLE);
      expect(!second.ok && second.details).toBe('pod failed call 3');
      expect(n).toBe(3);
      echo.behave = (_call, callback) => {
        n++;
        return n === 4 ? fail(callback, status.UNAVAILABLE, `pod failed call ${n}`) : false;
      };
      fail(heldRetry!, status.UNAVAILABLE, 'pod failed call 2');
      // The first call's retry ended (UNAVAILABLE again), so it retries once more: call 4 fails, call 5 answers.
      const firstOutcome = await first;
      expect(firstOutcome.ok).toBe(true);
      expect(n).toBe(5);
    });

    it("a retry whose back-off ends after the caller closed its client ends the call with the channel's refusal, and nothing throws", async () => {
      // Not in `clients`: the test closes it itself.
      const closing = new EchoClient('mesh:///free.shop:7007', insecure, meshGrpcOptions(mesh));
      let n = 0;
      echo.behave = (_call, callback) => {
        n++;
        // The call's first attempt is on its way back with UNAVAILABLE; its retry waits out its back-off.
        closing.close();
        return fail(callback, status.UNAVAILABLE, `pod failed call ${n}`);
      };
      const outcome = await callEcho(closing);
      expect(!outcome.ok && outcome.code).toBe(status.UNAVAILABLE);
      expect(!outcome.ok && outcome.details).toBe('Channel has been shut down');
      expect(n).toBe(1);
    });
  });
});

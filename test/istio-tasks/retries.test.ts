// Retries as the VirtualService reference documents them:
// https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRetry
// The reference example (ratings-route: attempts 3, perTryTimeout 2s,
// retryOn gateway-error,connect-failure,refused-stream) verbatim but for the host, which is a
// loopback ServiceEntry; and Istio's default retry policy when a route sets no `retries`
// (https://istio.io/latest/docs/concepts/traffic-management/#retries: "The default retry
// behavior for HTTP requests is to retry twice before returning the error").
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { TestClock } from '../helpers/test-clock.js';
import { call } from './bookinfo.js';

const service = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: prod }
spec:
  hosts: [ratings.prod.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: prod }
spec:
  host: ratings.prod.svc.cluster.local
  subsets: [{ name: v1, labels: { version: v1 } }]
---
`;
const RATINGS_ROUTE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
  namespace: prod
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - route:
    - destination:
        host: ratings.prod.svc.cluster.local
        subset: v1
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,connect-failure,refused-stream
`;

let pods: Pods;
let log: RequestLog;
let mesh: Mesh | undefined;
/** Status codes the pod answers, in turn; 200 once they run out. */
let script: number[] = [];
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  log = new RequestLog(pods);
  log.take = (seen) => {
    const status = script.shift();
    if (status === undefined) return false;
    seen.res.writeHead(status, { 'content-type': 'text/plain' }).end(`pod says ${status}`);
    return true;
  };
});
afterEach(async () => {
  script = [];
  log.clear();
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const url = () => `http://ratings.prod.svc.cluster.local:${pods.port}/ratings/1`;

describe('VirtualService reference: HTTPRetry', () => {
  it('gateway-error retries 502, 503 and 504 up to 3 times: the fourth attempt answers', async () => {
    mesh = await meshFromYaml(service(pods.port) + RATINGS_ROUTE, { namespace: 'prod' });
    script = [502, 503, 504];
    const res = await call(mesh, url());
    expect(res.status).toBe(200);
    expect(log.seen).toHaveLength(4);
  });

  it('after attempts are used up the caller gets the last upstream answer', async () => {
    mesh = await meshFromYaml(service(pods.port) + RATINGS_ROUTE, { namespace: 'prod' });
    script = [503, 503, 503, 502];
    const res = await call(mesh, url());
    expect(res.status).toBe(502);
    expect(res.text).toBe('pod says 502');
    expect(log.seen).toHaveLength(4);
  });

  it('a 500 is not a gateway error: not retried', async () => {
    mesh = await meshFromYaml(service(pods.port) + RATINGS_ROUTE, { namespace: 'prod' });
    script = [500];
    const res = await call(mesh, url());
    expect(res.status).toBe(500);
    expect(log.seen).toHaveLength(1);
  });

  it('retryOn names status codes too ("retriable-status-codes" by number, as the reference allows)', async () => {
    mesh = await meshFromYaml(service(pods.port) + RATINGS_ROUTE.replace('gateway-error,connect-failure,refused-stream', '500,connect-failure'), {
      namespace: 'prod',
    });
    script = [500, 500];
    const res = await call(mesh, url());
    expect(res.status).toBe(200);
    expect(log.seen).toHaveLength(3);
  });

  it("without retries on the route, Istio's default retries a 503 twice", async () => {
    mesh = await meshFromYaml(service(pods.port) + RATINGS_ROUTE.replace(/ {4}retries:[\s\S]*$/, ''), { namespace: 'prod' });
    script = [503, 503];
    expect((await call(mesh, url())).status).toBe(200);
    expect(log.seen).toHaveLength(3);
    log.clear();
    script = [503, 503, 503];
    expect((await call(mesh, url())).status).toBe(503);
    expect(log.seen).toHaveLength(3);
    log.clear();
    // The default does not retry other 5xx.
    script = [502];
    expect((await call(mesh, url())).status).toBe(502);
    expect(log.seen).toHaveLength(1);
  });

  it('attempts: 0 disables retries', async () => {
    mesh = await meshFromYaml(service(pods.port) + RATINGS_ROUTE.replace(/attempts: 3[\s\S]*$/, 'attempts: 0\n'), { namespace: 'prod' });
    script = [503];
    expect((await call(mesh, url())).status).toBe(503);
    expect(log.seen).toHaveLength(1);
  });

  it('perTryTimeout 2s: an attempt that takes longer is cut and retried (a timeout is a gateway error)', async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(service(pods.port) + RATINGS_ROUTE, { namespace: 'prod', clock });
    let held = true;
    const take = log.take;
    // The first attempt hangs; the retry is answered.
    log.take = (seen) => {
      if (!held) return take!(seen);
      held = false;
      return true;
    };
    try {
      const reply = call(mesh, url());
      await log.until(() => log.seen.length === 1);
      expect(clock.runNext((t) => t.kind === 'request')?.delayMs).toBe(2_000);
      // The retry's back-off (Envoy's 25 ms base, jittered).
      expect((await clock.next((t) => t.kind === 'request')).delayMs).toBeLessThan(25);
      const res = await reply;
      expect(res.status).toBe(200);
      expect(log.seen).toHaveLength(2);
    } finally {
      log.take = take;
      for (const s of log.seen) if (!s.res.headersSent) s.res.destroy();
    }
  });
});

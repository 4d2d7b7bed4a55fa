// Istio task "Fault Injection": https://istio.io/latest/docs/tasks/traffic-management/fault-injection/
// YAML: samples/bookinfo/networking/virtual-service-ratings-test-delay.yaml and
// virtual-service-ratings-test-abort.yaml, verbatim, over virtual-service-all-v1 and
// virtual-service-reviews-test-v2. The caller is reviews v2, which calls ratings with the user's
// `end-user` header; the test calls ratings as it does.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import type { TestTimer } from '../helpers/test-clock.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';
import { BOOKINFO_PODS, DESTINATION_RULE_ALL, RATINGS_V1, bookinfoServices, call } from './bookinfo.js';

const RATINGS_TEST_DELAY = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
`;

const RATINGS_TEST_ABORT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      abort:
        percentage:
          value: 100.0
        httpStatus: 500
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
`;

let pods: Pods;
let log: RequestLog;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start(BOOKINFO_PODS);
  log = new RequestLog(pods);
});
afterEach(async () => {
  log.clear();
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const ratings = () => `http://ratings:${pods.port}/ratings/0`;
const atRatings = (s: { pod: string }) => s.pod === RATINGS_V1;
const isDelay = (t: TestTimer): boolean => isRequestTimer(t) && t.delayMs === 7_000;

describe('Istio task: Fault Injection', () => {
  it("ratings-test-delay: jason's call to ratings is held 7s before it reaches ratings v1; other users are not delayed", async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(bookinfoServices(pods.port) + DESTINATION_RULE_ALL + '---\n' + RATINGS_TEST_DELAY, { namespace: 'default', clock });

    // Another user: straight through, no 7s timer.
    const other = await call(mesh, ratings(), { 'end-user': 'someone' });
    expect(other.reply?.pod).toBe(RATINGS_V1);
    expect(clock.scheduled.filter(isDelay)).toHaveLength(0);

    // jason: the delay timer holds the call; ratings has not seen it.
    const jason = call(mesh, ratings(), { 'end-user': 'jason' });
    await clock.until(isDelay);
    expect(clock.waiting.filter(isDelay)).toHaveLength(1);
    expect(log.count(atRatings)).toBe(1);
    clock.advance(6_999);
    expect(log.count(atRatings)).toBe(1);
    clock.advance(1);
    const res = await jason;
    expect(res.status).toBe(200);
    expect(res.reply?.pod).toBe(RATINGS_V1);
    expect(log.count(atRatings)).toBe(2);
  });

  it('ratings-test-abort: jason gets HTTP 500 "fault filter abort" without ratings being called; others get ratings', async () => {
    mesh = await meshFromYaml(bookinfoServices(pods.port) + DESTINATION_RULE_ALL + '---\n' + RATINGS_TEST_ABORT, { namespace: 'default' });
    for (let i = 0; i < 10; i++) {
      const res = await call(mesh, ratings(), { 'end-user': 'jason' });
      expect(res.status).toBe(500);
      expect(res.text).toBe('fault filter abort');
    }
    expect(log.count(atRatings)).toBe(0);
    const other = await call(mesh, ratings());
    expect(other.status).toBe(200);
    expect(other.reply?.pod).toBe(RATINGS_V1);
  });

  // Envoy's fault filter runs before the router, whose timeout starts only once the delay is
  // over: a 7s delay under a 2s route timeout still reaches ratings.
  it('the injected delay does not count against the route timeout', async () => {
    const clock = new TestClock();
    const withTimeout = RATINGS_TEST_DELAY.replace(
      '    route:\n    - destination:\n        host: ratings\n        subset: v1\n  - route:',
      '    timeout: 2s\n    route:\n    - destination:\n        host: ratings\n        subset: v1\n  - route:',
    );
    expect(withTimeout).toContain('timeout: 2s');
    mesh = await meshFromYaml(bookinfoServices(pods.port) + DESTINATION_RULE_ALL + '---\n' + withTimeout, { namespace: 'default', clock });
    const jason = call(mesh, ratings(), { 'end-user': 'jason' });
    await clock.until(isDelay);
    expect(clock.waiting.filter(isRequestTimer).map((t) => t.delayMs)).toEqual([7_000]);
    // The 2 s route timeout starts once the delay is over.
    clock.advance(7_000);
    expect(clock.waiting.filter(isRequestTimer).map((t) => t.delayMs)).toEqual([2_000]);
    const res = await jason;
    expect(res.status).toBe(200);
    expect(res.reply?.pod).toBe(RATINGS_V1);
  });
});

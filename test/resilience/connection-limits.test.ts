import { describe, expect, it } from 'vitest';
import { ClusterLimits } from '../../src/resilience/connection-limits.js';
import { compileLimits } from '../../src/resilience/connection-pool-policy.js';
import { OverflowError } from '../../src/resilience/errors.js';
import { TestClock } from '../helpers/test-clock.js';

function limits(pool: Parameters<typeof compileLimits>[0], budget?: Parameters<typeof compileLimits>[1], clock = new TestClock()): ClusterLimits {
  const policy = compileLimits(pool, budget);
  if (!policy) throw new Error('no limits');
  return new ClusterLimits('reviews|v1|9080', policy, clock);
}

/** Admits `n` attempts and starts them (they hold connections). */
function startMany(l: ClusterLimits, n: number, retry = false): void {
  for (let i = 0; i < n; i++) {
    expect(l.admit(retry)).toBeUndefined();
    l.started();
  }
}

describe('compileLimits', () => {
  it('is undefined (no bookkeeping at all) without any threshold or budget, and treats 0 as unset like istiod', () => {
    expect(compileLimits(undefined, undefined)).toBeUndefined();
    expect(compileLimits({ tcp: { maxConnections: 5 }, http: { http1MaxPendingRequests: 0, maxRetries: 0 } }, undefined)).toBeUndefined();
  });

  it("applies Envoy's budget defaults (20%, 3 concurrent retries, in-flight requests)", () => {
    expect(compileLimits(undefined, {})?.budget).toEqual({ percent: 20, minConcurrency: 3, intervalMs: 0 });
    expect(compileLimits(undefined, { percent: 0, minRetryConcurrency: 0, budgetInterval: '10s' })?.budget).toEqual({
      percent: 0,
      minConcurrency: 3,
      intervalMs: 10_000,
    });
  });
});

describe('ClusterLimits', () => {
  it('refuses a retry beyond maxRetries active retries, naming the field', () => {
    const l = limits({ http: { maxRetries: 2 } });
    startMany(l, 2, true);
    const refused = l.admit(true);
    expect(refused).toBeInstanceOf(OverflowError);
    expect(refused).toMatchObject({ cluster: 'reviews|v1|9080', limit: 'connectionPool.http.maxRetries', value: 2, code: 'ERR_MESH_OVERFLOW' });
    // First attempts are not retries: still admitted.
    expect(l.admit(false)).toBeUndefined();
    l.finished(false, false);
    l.finished(true, true);
    expect(l.admit(true)).toBeUndefined();
  });

  it('allows max(percent of active + pending, minRetryConcurrency) retries with a budget, ignoring maxRetries', () => {
    const l = limits({ http: { maxRetries: 1 } }, { percent: 25, minRetryConcurrency: 2 });
    startMany(l, 2, true);
    expect(l.admit(true)).toMatchObject({ limit: 'retryBudget', value: 2 });
    // 14 first attempts + 2 retries = 16 outstanding: 25% allows 4.
    startMany(l, 14);
    startMany(l, 2, true);
    expect(l.counts).toEqual({ pending: 0, active: 18, retries: 4 });
    expect(l.admit(true)).toMatchObject({ limit: 'retryBudget', value: 4 });
  });

  it('with budgetInterval, sizes the budget by requests started within the interval', () => {
    const clock = new TestClock();
    const l = limits(undefined, { percent: 50, minRetryConcurrency: 1, budgetInterval: '10s' }, clock);
    for (let i = 0; i < 8; i++) {
      expect(l.admit(false)).toBeUndefined();
      l.started();
      l.finished(true, false);
    }
    // Nothing is in flight, but 8 requests started in the window: 50% allows 4 retries.
    for (let i = 0; i < 4; i++) expect(l.admit(true)).toBeUndefined();
    expect(l.admit(true)).toMatchObject({ limit: 'retryBudget', value: 4 });
    clock.advance(11_000);
    // The window moved past them: only minRetryConcurrency is left.
    for (let i = 0; i < 4; i++) l.finished(false, true);
    expect(l.admit(true)).toBeUndefined();
    expect(l.admit(true)).toMatchObject({ limit: 'retryBudget', value: 1 });
  });

  it('counts a request pending until it starts, and active until it finishes', () => {
    const l = limits({ http: { http1MaxPendingRequests: 2, http2MaxRequests: 3 } });
    expect(l.admit(false)).toBeUndefined();
    expect(l.admit(false)).toBeUndefined();
    expect(l.admit(false)).toMatchObject({ limit: 'connectionPool.http.http1MaxPendingRequests', value: 2 });
    l.started();
    expect(l.admit(false)).toBeUndefined();
    l.started();
    expect(l.counts).toEqual({ pending: 1, active: 2, retries: 0 });
    expect(l.admit(false)).toMatchObject({ limit: 'connectionPool.http.http2MaxRequests', value: 3 });
    // One that never got a connection (connect failure) leaves the pending count.
    l.finished(false, false);
    expect(l.admit(false)).toBeUndefined();
  });

  it('with connection slots (HTTP/1.1 maxConnections), only requests beyond them are pending, opening or not', () => {
    const l = limits({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } });
    l.setConnectionSlots(1);
    // Neither has started (the first one's connection is still opening): one holds the slot, one waits.
    expect(l.admit(false)).toBeUndefined();
    expect(l.admit(false)).toBeUndefined();
    expect(l.admit(false)).toMatchObject({ limit: 'connectionPool.http.http1MaxPendingRequests', value: 1 });
    l.started();
    l.finished(true, false);
    // The waiting one takes the slot; one more may wait behind it.
    expect(l.admit(false)).toBeUndefined();
    expect(l.admit(false)).toMatchObject({ limit: 'connectionPool.http.http1MaxPendingRequests' });
    // Without slots every request not started is pending (Envoy's own count).
    l.setConnectionSlots(undefined);
    expect(l.admit(false)).toMatchObject({ limit: 'connectionPool.http.http1MaxPendingRequests' });
  });

  it('keeps its counts across a policy change', () => {
    const l = limits({ http: { http2MaxRequests: 2 } });
    startMany(l, 2);
    l.setPolicy(compileLimits({ http: { http2MaxRequests: 3 } }, undefined)!);
    expect(l.admit(false)).toBeUndefined();
    expect(l.admit(false)).toMatchObject({ value: 3 });
  });
});

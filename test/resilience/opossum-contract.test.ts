import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import CircuitBreaker from 'opossum';
import { afterEach, describe, expect, it, vi } from 'vitest';

/**
 * What ServiceBreaker relies on beyond opossum's documented API (docs/decisions.md, "The service
 * breaker's per-call path"), checked against opossum itself. opossum is pinned to the exact
 * version below; a release that changes any of this fails here, naming what changed, before the
 * breaker silently stops opening or forgetting.
 */
const PINNED = '10.0.0';
const root = resolve(import.meta.dirname, '../..');

let circuit: CircuitBreaker<[], void> | undefined;
afterEach(() => {
  circuit?.shutdown();
  circuit = undefined;
});

function breaker(action: () => Promise<void> = () => Promise.resolve(), buckets = 4): { circuit: CircuitBreaker<[], void>; rotator: EventEmitter } {
  const rotator = new EventEmitter();
  circuit = new CircuitBreaker<[], void>(action, {
    timeout: false,
    errorThresholdPercentage: 50,
    resetTimeout: 3_600_000,
    rollingCountTimeout: 1_000,
    rollingCountBuckets: buckets,
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
    rotateBucketController: rotator,
  });
  return { circuit, rotator };
}

describe(`opossum ${PINNED}: the contract ServiceBreaker relies on`, () => {
  it('is the exact version package.json pins', () => {
    const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.opossum).toBe(PINNED);
    const installed = JSON.parse(readFileSync(resolve(root, 'node_modules/opossum/package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(PINNED);
  });

  it('status.window[0] is the live bucket: counts added to it are what stats sums', () => {
    const { circuit } = breaker();
    const newest = circuit.status.window[0]!;
    newest.fires += 3;
    newest.successes += 2;
    expect(circuit.stats.fires).toBe(3);
    expect(circuit.stats.successes).toBe(2);
  });

  it('each rotate event of the controller puts a fresh bucket at window[0], and drops the oldest after rollingCountBuckets', () => {
    const { circuit, rotator } = breaker(undefined, 4);
    const first = circuit.status.window[0]!;
    first.fires += 1;
    rotator.emit('rotate');
    const second = circuit.status.window[0]!;
    expect(second).not.toBe(first);
    expect(second.fires).toBe(0);
    expect(circuit.stats.fires).toBe(1);
    for (let i = 0; i < 3; i++) rotator.emit('rotate');
    expect(circuit.stats.fires).toBe(0);
  });

  it("emitting 'failure' counts a failure in the window", () => {
    const { circuit } = breaker();
    circuit.emit('failure', new Error('upstream answered 503'), 0, []);
    expect(circuit.stats.failures).toBe(1);
  });

  it("emitting 'success' while half-open closes the breaker", () => {
    // opossum's reset timer is its own setTimeout (no clock option): fake timers drive it here.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { circuit } = breaker();
      circuit.open();
      vi.advanceTimersByTime(3_600_000);
      expect(circuit.halfOpen).toBe(true);
      circuit.emit('success', undefined, 0);
      expect(circuit.closed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fire() runs the action synchronously when it admits the call, and not at all when open', () => {
    let ran = 0;
    const { circuit } = breaker(() => {
      ran++;
      return new Promise<void>(() => undefined);
    });
    void circuit.fire();
    expect(ran).toBe(1);
    circuit.open();
    circuit.fire().catch(() => undefined);
    expect(ran).toBe(1);
  });

  it('sets no timer of its own for the window when given a rotateBucketController (the mesh clock rotates it)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval'] });
    try {
      breaker();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

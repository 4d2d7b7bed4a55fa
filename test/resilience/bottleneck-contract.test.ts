import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SharedStore } from '../../src/resilience/rate-limit/shared-store.js';
import { RedisServer } from '../helpers/redis.js';

/**
 * SharedStore.release lets go of one key's bottleneck limiter through bottleneck's clustering
 * internals (its heartbeat timer, the connection's limiter table and subscriber), because
 * bottleneck's own `disconnect()` leaves an unhandled rejection while Redis is down
 * (docs/decisions.md). bottleneck is pinned to the exact version below; these tests fail if a
 * release moves what release() reaches.
 */
const PINNED = '2.19.5';
const root = resolve(import.meta.dirname, '../..');
const SPEC = { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 60_000 };

let redis: RedisServer;
let admin: Redis;
beforeAll(async () => {
  redis = await RedisServer.start();
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.close();
});

/** Channels of Redis pub/sub with a subscriber, for ids starting with `prefix`. */
async function channels(prefix: string): Promise<string[]> {
  return ((await admin.pubsub('CHANNELS', `b_${prefix}*`)) as string[]).sort();
}

describe(`bottleneck ${PINNED}: what SharedStore.release reaches`, () => {
  it('is the exact version package.json pins', () => {
    const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.bottleneck).toBe(PINNED);
    const installed = JSON.parse(readFileSync(resolve(root, 'node_modules/bottleneck/package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(PINNED);
  });

  it("stops a released key's heartbeat and unsubscribes its channels; other keys keep theirs", async () => {
    // bottleneck's heartbeat is its own setInterval (no clock option): fake intervals count its beats.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const store = new SharedStore({ url: redis.url }, `release-${process.pid}`);
    try {
      const kept = await store.reservoir('kept', SPEC);
      const released = await store.reservoir('released', SPEC);
      await Promise.all([kept.currentReservoir(), released.currentReservoir()]);
      const beats = { kept: 0, released: 0 };
      kept.on('debug', (message: string) => message.includes('heartbeat') && beats.kept++);
      released.on('debug', (message: string) => message.includes('heartbeat') && beats.released++);
      expect(await channels(`release-${process.pid}:released`)).toHaveLength(2);

      store.release(released);
      vi.advanceTimersByTime(5_000);
      // Both beats would be reported on the same turn: once the kept one is, the other would be too.
      await vi.waitFor(() => expect(beats.kept).toBe(1));
      expect(beats).toEqual({ kept: 1, released: 0 });
      await vi.waitFor(async () => expect(await channels(`release-${process.pid}:released`)).toEqual([]));
      expect(await channels(`release-${process.pid}:kept`)).toHaveLength(2);
    } finally {
      vi.useRealTimers();
      await store.close();
    }
  });

  it('releasing a key while Redis is down leaves no unhandled rejection', async () => {
    const down = await RedisServer.start();
    const store = new SharedStore({ url: down.url }, `down-${process.pid}`);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const limiter = await store.reservoir('key', SPEC);
      await limiter.currentReservoir();
      await down.stop();
      store.release(limiter);
      // Unhandled rejections are reported after the microtask queue drains; give the failed
      // unsubscribe commands a few turns to come back.
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await store.close();
      await down.close();
    }
  });
});

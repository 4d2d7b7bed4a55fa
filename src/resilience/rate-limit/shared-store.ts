import type Bottleneck from 'bottleneck';
import { MeshClosedError } from '../../errors.js';
import type { TokenBucketSpec } from './token-bucket.js';

/**
 * An ioredis client (`new Redis(...)` from the `ioredis` package). sidecarless uses a
 * duplicate of it (`client.duplicate()`), so closing the mesh leaves yours open.
 */
export interface RedisClientLike {
  duplicate(): unknown;
}

/** Where SHARED rate limits keep their buckets: the `rateLimit.redis` option of `createMesh`. */
export type RateLimitRedisOptions =
  | {
      /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
      readonly url: string;
    }
  | {
      /** An ioredis client of yours. */
      readonly client: RedisClientLike;
    };

/** What {@link SharedStore.release} reaches into (bottleneck 2.19's clustering internals). */
interface BottleneckInternals {
  readonly _store?: { readonly heartbeat?: ReturnType<typeof setInterval> };
  readonly connection?: {
    readonly terminated?: boolean;
    readonly limiters?: Record<string, unknown>;
    readonly subscriber?: { unsubscribe(channel: string): Promise<unknown> };
  };
  channel(): string;
  channel_client(): string;
}

/**
 * The Redis side of SHARED limits: bottleneck (clustering mode, `datastore: 'ioredis'`) keeps
 * each bucket as a reservoir in Redis (`reservoir`, `reservoirIncreaseAmount`,
 * `reservoirIncreaseInterval`, `reservoirIncreaseMaximum`: Envoy's token bucket), and every
 * replica that uses the same id shares it. bottleneck and ioredis are loaded on first use, so a
 * mesh without SHARED limits never loads either.
 */
export class SharedStore {
  private connection: Promise<{ Bottleneck: typeof Bottleneck; connection: Bottleneck.IORedisConnection }> | undefined;
  private closed = false;

  /** The last error the Redis clients reported (they retry on their own), for failure messages. */
  lastError: Error | undefined;

  constructor(
    private readonly redis: RateLimitRedisOptions,
    /** Prefix of every bottleneck id (and so of the Redis keys). */
    private readonly prefix: string,
  ) {}

  private readonly onConnectionError = (error: unknown): void => {
    // ioredis reports every failed reconnection attempt; limits report outages once each.
    this.lastError = error instanceof Error ? error : new Error(String(error));
  };

  /** A reservoir with id `id` (one bucket), created in Redis full unless it exists already. */
  async reservoir(id: string, spec: TokenBucketSpec): Promise<Bottleneck> {
    const { Bottleneck, connection } = await this.connect();
    if (this.closed) throw new MeshClosedError();
    // An idle bucket has refilled completely after this long; its keys then expire (bottleneck's
    // `timeout`), so unused keys do not pile up in Redis.
    const refillMs = Math.ceil(spec.maxTokens / spec.tokensPerFill) * spec.fillIntervalMs;
    const limiter = new Bottleneck({
      id: `${this.prefix}:${id}`,
      datastore: 'ioredis',
      connection,
      reservoir: spec.maxTokens,
      reservoirIncreaseAmount: spec.tokensPerFill,
      reservoirIncreaseInterval: spec.fillIntervalMs,
      reservoirIncreaseMaximum: spec.maxTokens,
      timeout: Math.max(60_000, refillMs + spec.fillIntervalMs),
    });
    limiter.on('error', this.onConnectionError);
    return limiter;
  }

  private connect(): Promise<{ Bottleneck: typeof Bottleneck; connection: Bottleneck.IORedisConnection }> {
    this.connection ??= (async () => {
      const [{ default: BottleneckClass }, ioredis] = await Promise.all([import('bottleneck'), import('ioredis')]);
      const Redis = ioredis.Redis;
      const client =
        'url' in this.redis
          ? // Fail commands at once while disconnected (the limit falls back to a local bucket)
            // rather than queueing them until Redis is back.
            new Redis(this.redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
          : this.redis.client.duplicate();
      const connection = new BottleneckClass.IORedisConnection({ client, Redis });
      connection.on('error', this.onConnectionError);
      return { Bottleneck: BottleneckClass, connection };
    })();
    return this.connection;
  }

  /**
   * Lets go of one reservoir (an evicted key, a removed limit): its heartbeat timer and its
   * subscriptions. bottleneck's own `disconnect()` unsubscribes without handling a failure, which
   * would surface as an unhandled rejection while Redis is down, so this does it itself.
   */
  release(limiter: Bottleneck): void {
    const internals = limiter as unknown as BottleneckInternals;
    if (internals._store?.heartbeat) clearInterval(internals._store.heartbeat);
    const connection = internals.connection;
    if (!connection || connection.terminated) return;
    for (const channel of [internals.channel(), internals.channel_client()]) {
      delete connection.limiters?.[channel];
      connection.subscriber?.unsubscribe(channel).catch(() => undefined);
    }
  }

  /** Disconnects from Redis (both clients bottleneck holds; a client you passed stays open). */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.connection;
    this.connection = undefined;
    if (!pending) return;
    try {
      const { connection } = await pending;
      await connection.disconnect(false);
    } catch {
      // Loading or connecting failed: nothing to release.
    }
  }
}

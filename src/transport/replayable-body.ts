import { Readable } from 'node:stream';
import type { RequestBody } from '../request-protocol.js';

type Body = RequestBody | undefined;

/** Envoy's default per-request buffer limit (1 MiB): a larger streamed body cannot be retried. */
export const DEFAULT_RETRY_BUFFER_BYTES = 1024 * 1024;

/**
 * A request body that a retry can send again. Bodies held in memory (none, string, bytes) are
 * sent as they are on every attempt. A streamed body (Node stream, async iterable, web stream) is
 * recorded while the first attempt sends it, up to `limit` bytes; a retry replays the recorded
 * chunks and then goes on reading the source where it stopped. Once more than `limit` bytes have
 * passed, the request is no longer retriable, as in Envoy once its buffer limit is exceeded.
 *
 * A source that fails is remembered: the body can never be sent whole again, and the failure is
 * the caller's, not the upstream's (see {@link ReplayableBody.failure}).
 */
export class ReplayableBody {
  private readonly chunks: Uint8Array[] = [];
  private recorded = 0;
  private iterator: AsyncIterator<unknown> | undefined;
  private overflowed = false;
  private exhausted = false;
  private attempts = 0;
  private reading: Promise<void> | undefined;
  /** What the source threw (an error in the caller's stream); undefined while it has not failed. */
  failure: Error | undefined;

  private constructor(
    private readonly source: Body,
    private readonly limit: number,
  ) {}

  /** undefined when the body is sent as is on every attempt (nothing to record). */
  static wrap(body: Body, limit: number): ReplayableBody | undefined {
    if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array) return undefined;
    if (!isStreamLike(body)) return undefined;
    return new ReplayableBody(body, limit);
  }

  /** Whether another attempt can send the whole body again. */
  get replayable(): boolean {
    return !this.overflowed && this.failure === undefined;
  }

  /** The source has been read to its end: every byte of the body is known. */
  get complete(): boolean {
    return this.exhausted;
  }

  /** The body for the next attempt; a previous attempt must have stopped reading. */
  next(): Body {
    this.attempts++;
    const attempt = this.attempts;
    return Readable.from(this.replay(attempt), { objectMode: false });
  }

  /** Releases the source when no attempt will read it again. */
  close(): void {
    const it = this.iterator;
    this.iterator = undefined;
    if (it && !this.exhausted) void it.return?.().catch(() => undefined);
    else if (!it && !this.exhausted && this.source instanceof Readable) this.source.destroy();
  }

  private async *replay(attempt: number): AsyncGenerator<Uint8Array> {
    // An aborted attempt may still have a read in flight: its chunk is recorded before replaying.
    if (this.reading) await this.reading;
    if (this.failure) throw this.failure;
    let i = 0;
    while (attempt === this.attempts) {
      if (!this.overflowed && i < this.chunks.length) {
        yield this.chunks[i++]!;
        continue;
      }
      if (this.exhausted) return;
      const chunk = await this.pull();
      if (chunk === undefined || attempt !== this.attempts) return;
      i = this.chunks.length;
      yield chunk;
    }
  }

  /** Reads one chunk from the source and records it (until the limit is passed). */
  private pull(): Promise<Uint8Array | undefined> {
    // Iterated by hand (not for-await) so that an aborted attempt does not close the source a
    // retry will go on reading.
    this.iterator ??= toAsyncIterable(this.source)[Symbol.asyncIterator]();
    const read = this.iterator.next().then(this.recordChunk, this.sourceFailed);
    this.reading = read.then(ignore, ignore);
    return read;
  }

  private readonly recordChunk = ({ value, done }: IteratorResult<unknown>): Uint8Array | undefined => {
    if (done) {
      this.exhausted = true;
      return undefined;
    }
    const chunk = toBytes(value);
    if (!this.overflowed) {
      this.recorded += chunk.byteLength;
      if (this.recorded > this.limit) {
        this.overflowed = true;
        this.chunks.length = 0;
      } else {
        this.chunks.push(chunk);
      }
    }
    return chunk;
  };

  private readonly sourceFailed = (error: unknown): never => {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    throw error;
  };
}

const ignore = (): undefined => undefined;

function isStreamLike(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (Symbol.asyncIterator in body || body instanceof Readable);
}

function toAsyncIterable(body: Body): AsyncIterable<unknown> {
  return body as unknown as AsyncIterable<unknown>;
}

function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return Buffer.from(String(value));
}

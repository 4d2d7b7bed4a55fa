import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pods } from './pods.js';

/** One request as a test pod received it. */
export interface SeenRequest {
  readonly pod: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: IncomingMessage['headers'];
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request body as text, once it has all arrived. */
  readonly body: Promise<string>;
}

/**
 * Records every request the pods receive, and lets a test wait for one (or for a count) without
 * sleeping: `until` resolves on the request that makes its condition true. `take` lets a test
 * answer some requests itself (return true: the pod does not answer them).
 */
export class RequestLog {
  readonly seen: SeenRequest[] = [];
  take: ((seen: SeenRequest) => boolean) | undefined;
  private waiters: { readonly test: () => boolean; readonly resolve: () => void }[] = [];

  constructor(pods: Pods) {
    pods.behave = (req, res, pod) => {
      const body = new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => resolve(Buffer.concat(chunks).toString()));
        req.on('close', () => resolve(Buffer.concat(chunks).toString()));
      });
      const seen: SeenRequest = { pod, method: req.method ?? '', path: req.url ?? '', host: req.headers.host ?? '', headers: req.headers, req, res, body };
      this.seen.push(seen);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test()) return true;
        w.resolve();
        return false;
      });
      return this.take?.(seen) ?? false;
    };
  }

  count(test: (seen: SeenRequest) => boolean): number {
    let n = 0;
    for (const s of this.seen) if (test(s)) n++;
    return n;
  }

  /** Resolves once `test` holds (checked now and after each request). */
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }

  clear(): void {
    this.seen.length = 0;
  }
}

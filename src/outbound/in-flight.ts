import type { MeshClosedError } from '../errors.js';

/**
 * Something of a caller's in flight that `close()` must be able to stop: a request on its way
 * (its attempts, timers and retries), or one waiting before it is sent (a fault delay, a warming
 * cluster). Linked into its {@link InFlight} list by its own fields, so tracking a request costs
 * no allocation. An interface, not a base class: a derived class costs the request path a little
 * on every construction. Implementations start with the links unset and `listed` false.
 */
export interface InFlightItem {
  prevLive: InFlightItem | undefined;
  nextLive: InFlightItem | undefined;
  listed: boolean;

  /** Close began: start nothing new (no retry, hedge or back-off); what is in flight goes on. */
  stopRetrying(): void;

  /** The drain period is over (or the mesh is destroyed): fail now with `error`. */
  abortForClose(error: MeshClosedError): void;
}

/** The requests of one dispatcher that are in flight, for close() to drain. */
export class InFlight {
  private head: InFlightItem | undefined;
  private count = 0;
  /** close() began: no request starts a retry, hedge or back-off any more. */
  closing = false;
  private onEmpty: (() => void) | undefined;

  get size(): number {
    return this.count;
  }

  add(item: InFlightItem): void {
    if (item.listed) return;
    item.listed = true;
    item.prevLive = undefined;
    item.nextLive = this.head;
    if (this.head) this.head.prevLive = item;
    this.head = item;
    this.count++;
  }

  remove(item: InFlightItem): void {
    if (!item.listed) return;
    item.listed = false;
    const { prevLive, nextLive } = item;
    if (prevLive) prevLive.nextLive = nextLive;
    else this.head = nextLive;
    if (nextLive) nextLive.prevLive = prevLive;
    item.prevLive = undefined;
    item.nextLive = undefined;
    this.count--;
    if (this.count === 0 && this.onEmpty) {
      const done = this.onEmpty;
      this.onEmpty = undefined;
      done();
    }
  }

  /** The items now, as an array: stopping one may take it (or others) off the list. */
  items(): InFlightItem[] {
    const out: InFlightItem[] = [];
    for (let item = this.head; item; item = item.nextLive) out.push(item);
    return out;
  }

  /** Runs `done` once the list is empty (now, if it is). One waiter: close() is the only one. */
  whenEmpty(done: () => void): void {
    if (this.count === 0) done();
    else this.onEmpty = done;
  }
}

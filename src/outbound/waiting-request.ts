import type { ResponseHandler } from '../request-protocol.js';
import { MeshClosedError } from '../errors.js';
import type { InFlight, InFlightItem } from './in-flight.js';
import { sendLocalError } from './local-reply.js';
import type { OutboundCall } from './call.js';
import type { Layer } from './layer.js';

/**
 * A request waiting before it is sent (a fault delay, a cluster's first DNS answer): listed in
 * flight meanwhile, so that close() fails it at once with MeshClosedError instead of letting the
 * wait run out (and its timer keep the process alive).
 */
export class WaitingRequest implements InFlightItem {
  prevLive: InFlightItem | undefined = undefined;
  nextLive: InFlightItem | undefined = undefined;
  listed = false;
  /** Cancels the wait's timer, when it has one. */
  cancelTimer: (() => void) | undefined = undefined;
  private settled = false;

  constructor(
    private readonly live: InFlight,
    private readonly handler: ResponseHandler,
    /** What the request was doing, for the error: "was waiting out a fault delay". */
    private readonly what: string,
  ) {
    live.add(this);
  }

  /** The wait is over: true when the request goes on (close has not failed it meanwhile). */
  proceed(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.live.remove(this);
    return true;
  }

  stopRetrying(): void {
    if (!this.proceed()) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    sendLocalError(this.handler, new MeshClosedError(`the mesh is closed: the request ${this.what}`));
  }

  abortForClose(): void {
    this.stopRetrying();
  }
}

/**
 * Hands `call` to `layer` again once `wait` settles (a warming cluster, a namespace's first list,
 * client credentials read for the first time), or fails it if the mesh closed meanwhile.
 */
export function resumeAfter(live: InFlight, wait: Promise<unknown>, call: OutboundCall, layer: Layer): void {
  const waiting = new WaitingRequest(live, call.handler, 'was waiting for its destination to be discovered');
  wait.then(
    () => {
      if (waiting.proceed()) handleSafely(layer, call);
    },
    (error: unknown) => {
      if (waiting.proceed()) sendLocalError(call.handler, error instanceof Error ? error : new Error(String(error)));
    },
  );
}

/** Runs a layer outside the caller's dispatch: what it throws goes to the caller's handler. */
export function handleSafely(layer: Layer, call: OutboundCall): void {
  try {
    layer.handle(call);
  } catch (error) {
    sendLocalError(call.handler, error instanceof Error ? error : new Error(String(error)));
  }
}

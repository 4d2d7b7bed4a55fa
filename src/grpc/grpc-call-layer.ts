import type { InterceptorOptions } from '@grpc/grpc-js';
import type { Cluster } from '../cluster/cluster.js';
import type { OutboundCall } from '../outbound/call.js';
import type { Layer } from '../outbound/layer.js';
import { sendLocalError } from '../outbound/local-reply.js';
import { remainingTimeMs } from '../resilience/deadline.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import { DEFAULT_RETRY_POLICY } from '../resilience/retry-policy.js';
import { callHash } from './call-hash.js';
import { GrpcNoRouteError, GrpcUnsupportedRouteError } from './errors.js';
import { GrpcCall } from './grpc-call.js';
import { GrpcCode } from './grpc-status.js';
import { localStatus } from './local-status.js';
import { applyMetadataOps } from './metadata-ops.js';

/** What Envoy's :path may carry: a gRPC method path rewritten to anything else is not sent. */
const SENDABLE_PATH = /^\/[\x21-\x7e]*$/;

/** The caller's deadline as epoch milliseconds (Infinity: none). */
export function epochOf(deadline: InterceptorOptions['deadline']): number {
  if (deadline === undefined) return Infinity;
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** How errors name a destination. */
function destinationText(host: string, subset: string | undefined, port: number): string {
  return `${host}${subset ? ` subset ${subset}` : ''} port ${port}`;
}

/**
 * The bottom of a gRPC call's route stack (src/outbound/stack.ts `grpcOutboundStack`), below the
 * layers HTTP shares: what only gRPC does before its attempts. A destination needs endpoints the
 * mesh knows (no pass-through); the route's path rewrite must be a path a gRPC call can send, its
 * metadata rules ones grpc-js can write (else the call fails closed), its authority rule becomes
 * the call's `:authority`; the deadline is the sooner of the caller's, the route timeout and the
 * inbound request's; the cluster's hash policy reads the metadata; hedging is for calls whose
 * request is complete before any answer. Then the call's attempts start (`MeshCall`).
 */
export class GrpcCallLayer implements Layer {
  handle(outbound: OutboundCall): void {
    if (!(outbound instanceof GrpcCall)) throw new TypeError('the gRPC route stack takes gRPC calls only');
    const call = outbound;
    const cluster = call.cluster;
    if (!cluster || cluster.passthrough) return sendLocalError(call.handler, noEndpoints(call, cluster));
    const { route, actions } = call;
    let retry: RetryPolicy | undefined = DEFAULT_RETRY_POLICY;
    let timeoutMs = 0;
    if (route !== undefined && actions !== undefined) {
      const path = call.path;
      // The route's compiled rewrite, as for HTTP: the matched prefix replaced, the whole path, or the regex.
      const rewritten = actions.rewritePath(path, call.matchIndex);
      if (rewritten !== undefined && !SENDABLE_PATH.test(rewritten)) {
        return sendLocalError(
          call.handler,
          new GrpcUnsupportedRouteError(
            `the route for ${path} on ${call.serviceHost} (${route.resource.namespace}/${route.resource.name} ${route.path}) rewrites the path to ${JSON.stringify(rewritten)}, which is not a path a gRPC call can send; the call was not sent`,
          ),
        );
      }
      if (rewritten !== path) call.sentPath = rewritten;
      const rules = actions.destination(call.destination!);
      call.destinationActions = rules;
      if (rules.request.length > 0) {
        // Once, before the first attempt (every attempt sends a clone); the caller's object is left as it was.
        const metadata = call.metadata.clone();
        const refused = applyMetadataOps(metadata, rules.request);
        // Fails closed: a call without the metadata its route adds could pass where it should not.
        if (refused !== undefined) {
          return sendLocalError(
            call.handler,
            new GrpcUnsupportedRouteError(
              `the route for ${path} on ${call.serviceHost} (${route.name ?? 'unnamed'}) sets metadata grpc-js cannot send (${refused}); the call was not sent`,
            ),
          );
        }
        call.metadata = metadata;
      }
      call.responseOps = rules.response;
      call.sentAuthority = rules.authority;
      retry = actions.retry;
      timeoutMs = actions.timeoutMs;
    }
    // The sooner of the caller's deadline, the route timeout and the inbound request's deadline.
    const now = Date.now();
    let at = call.deadlineAt;
    if (timeoutMs > 0) at = Math.min(at, now + timeoutMs);
    const remaining = remainingTimeMs();
    if (remaining !== undefined) {
      if (remaining <= 0) {
        call.owner.answer(localStatus(GrpcCode.DEADLINE_EXCEEDED, "deadline exceeded: the inbound request's deadline passed before the call was sent"), true);
        return;
      }
      at = Math.min(at, now + remaining);
    }
    call.deadlineAt = at;
    call.timeoutMs = timeoutMs;
    const hashOn = cluster.hashOn;
    call.retry = retry;
    call.hash = hashOn ? callHash(hashOn, call.metadata) : undefined;
    // As Envoy: a retry avoids the hosts tried unless the route says not to, or, by default, the cluster hashes.
    call.avoidPreviousHosts = retry !== undefined && (retry.ignorePreviousHosts ?? hashOn === undefined);
    // Hedged: calls whose request is complete before any answer matters (unary, server streaming).
    call.hedgeAfterMs = retry !== undefined && !call.requestStream ? cluster.hedgeAfterMs : 0;
    call.owner.begin(call);
  }
}

/** A destination without endpoints of its own: gRPC calls are sent to endpoints the mesh knows, never passed through. */
function noEndpoints(call: GrpcCall, cluster: Cluster | undefined): GrpcNoRouteError {
  const where = destinationText(call.host, call.destination?.subset, call.destinationPort);
  return new GrpcNoRouteError(
    cluster
      ? `${where} has no endpoints in the mesh (resolution NONE); gRPC calls need endpoints the mesh knows`
      : `${where} has no endpoints in the mesh; gRPC calls need endpoints the mesh knows (ServiceEntry, WorkloadEntry, EndpointSlices or DNS)`,
  );
}

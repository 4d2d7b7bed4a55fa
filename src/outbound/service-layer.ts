import type { ResolvedTls } from '../cluster/cluster.js';
import { tlsFailure } from '../cluster/cluster.js';
import { isImportedKubernetesService, isKubernetesServiceHost } from '../cluster/endpoint-plan.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import { UnknownHostError } from './errors.js';
import type { Layer } from './layer.js';
import { sendLocalError } from './local-reply.js';
import { PassthroughRequest } from './passthrough-request.js';
import { resumeAfter } from './waiting-request.js';

type OriginatedTls = Exclude<ResolvedTls, { kind: 'unsupported' | 'unavailable' | 'disable' }>;

/**
 * The service a request is for: the written host resolved to a service host, and its port's
 * routes. A host no configuration covers is sent as is (ALLOW_ANY) or refused (REGISTRY_ONLY),
 * as a sidecar's PassthroughCluster / BlackHoleCluster, or refused by the call's protocol
 * (`unknownHostRefusal`: gRPC); the other layers never see it.
 */
export class ServiceLayer implements Layer {
  constructor(
    private readonly next: Layer,
    private readonly ctx: OutboundContext,
  ) {}

  handle(call: OutboundCall): void {
    const { destinations, clusters } = this.ctx;
    const snapshot = destinations.snapshot();
    const hostname = call.origin.hostname;
    const serviceHost = destinations.serviceHost(hostname);
    // TLS and HTTPS ports are routed by SNI (`tls` routes), never by HTTP routes.
    const portRoute = snapshot.routeFor(serviceHost, call.port, destinations.portProtocolOf);
    // A Kubernetes service named with its namespace is found by the mesh's own DNS discovery
    // (src/cluster/endpoint-plan.ts) even when no configuration mentions it.
    const table = portRoute.kind === 'http' ? portRoute.table : undefined;
    if (!table && !snapshot.service(serviceHost) && !clusters.discovers(serviceHost, hostname)) {
      this.passThrough(call, serviceHost);
      return;
    }
    call.serviceHost = serviceHost;
    call.portRoute = portRoute;
    call.parse();
    this.next.handle(call);
  }

  private passThrough(call: OutboundCall, serviceHost: string): void {
    const { destinations, clusters } = this.ctx;
    const snapshot = destinations.snapshot();
    const hostname = call.origin.hostname;
    // At startup a bare name may be a Service the API has not listed yet: ask again once it has.
    const pending = clusters.discoveryPending(serviceHost, hostname);
    if (pending) return resumeAfter(this.ctx.live, pending, call, this);
    // A protocol without a pass-through (gRPC) refuses the host whatever the policy.
    const refused = call.unknownHostRefusal(serviceHost);
    if (refused) return sendLocalError(call.handler, refused);
    // No configuration covers the host: ALLOW_ANY sends it as is, REGISTRY_ONLY refuses it.
    const policy = this.ctx.outboundTrafficPolicy ?? snapshot.outboundTrafficPolicy ?? 'ALLOW_ANY';
    // Kubernetes services are in the registry, unless a Sidecar's egress hosts leave them out.
    if (policy === 'REGISTRY_ONLY' && !(isKubernetesServiceHost(serviceHost, snapshot.clusterDomain) && isImportedKubernetesService(snapshot, serviceHost))) {
      return sendLocalError(call.handler, new UnknownHostError(serviceHost));
    }
    // A DestinationRule's TLS still applies (a Kubernetes service left to the platform's DNS).
    const port = call.port;
    const tls = destinations.passthroughTls(serviceHost, port);
    if (tls === undefined || tls.kind === 'disable') {
      destinations.passthrough().dispatch(call.request, new PassthroughRequest(call.handler, this.ctx.live));
      return;
    }
    // Client credentials being read for the first time: wait for them, then look again.
    if (tls.kind === 'unavailable' && tls.pending) return resumeAfter(this.ctx.live, tls.pending, call, this);
    const refusal = tlsFailure(tls) ?? destinations.tlsAgents.refusal(tls as OriginatedTls, `${serviceHost}:${port}`);
    if (refusal) return sendLocalError(call.handler, refusal);
    destinations
      .tlsAgent(tls as OriginatedTls)
      .dispatch({ ...call.request, origin: `https://${hostname}:${port}` }, new PassthroughRequest(call.handler, this.ctx.live));
  }
}

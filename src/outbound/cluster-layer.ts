import { tlsFailure } from '../cluster/cluster.js';
import { TlsCredentialUnavailableError, TlsNotSupportedError } from '../security/errors.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';
import { sendLocalError, sendLocalReply } from './local-reply.js';
import { resumeAfter } from './waiting-request.js';

/**
 * The destination's cluster and the TLS its connections use. A cluster still waiting for its
 * first DNS answer, or client credentials read for the first time, hold the call until they are
 * ready; TLS the mesh cannot originate fails the call closed, before anything is sent.
 */
export class ClusterLayer implements Layer {
  constructor(
    private readonly next: Layer,
    private readonly ctx: OutboundContext,
  ) {}

  handle(call: OutboundCall): void {
    const destinations = this.ctx.destinations;
    const { destination, host, destinationPort: port } = call;
    const subset = destination?.subset;
    const cluster = destination ? destinations.clusterFor(destination, port) : destinations.serviceCluster(host, port);
    // DNS discovery: the first calls to a new cluster wait for its first answer; once it has
    // settled `warming` is unset and no call waits again. The cluster is looked up again
    // afterwards, as it may have been replaced meanwhile.
    if (cluster?.warming) return resumeAfter(this.ctx.live, cluster.warming, call, this);
    call.observer.routed(call.route?.name, host, subset, cluster?.name);
    if (!cluster && subset !== undefined) {
      // Envoy's cluster_not_found: no cluster exists for the subset (a service kept without endpoints).
      call.observer.answeredLocally('no-healthy-upstream', ResponseFlag.NC);
      return sendLocalReply(call.handler, 503, 'no healthy upstream', { [RESPONSE_FLAGS_HEADER]: 'NC' });
    }
    // The DestinationRule's TLS: the cluster's, or for a destination without one (pass-through) the rule's.
    const tls = cluster ? cluster.upstreamTls : destinations.passthroughTls(host, port);
    if (tls?.kind === 'unavailable' && tls.pending) return resumeAfter(this.ctx.live, tls.pending, call, this);
    // TLS the mesh cannot originate (now): fail closed, before anything is sent (never plaintext).
    const refusal = cluster
      ? cluster.tlsRefusal()
      : (tlsFailure(tls) ?? (tls?.kind === 'mesh' ? destinations.tlsAgents.refusal(tls, `${host}:${port}`) : undefined));
    if (refusal) {
      call.observer.answeredLocally(
        refusal instanceof TlsNotSupportedError
          ? 'tls-unsupported'
          : refusal instanceof TlsCredentialUnavailableError
            ? 'tls-credential'
            : 'tls-no-certificate',
        0,
      );
      return sendLocalError(call.handler, refusal);
    }
    call.cluster = cluster;
    call.tls = tls;
    this.next.handle(call);
  }
}

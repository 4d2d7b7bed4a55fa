import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext } from 'node:tls';
import type { ConnectionOptions, SecureContext } from 'node:tls';
import type { Host } from '../balancer/host.js';
import type { Cluster } from '../cluster/cluster.js';
import type { MeshError } from '../errors.js';
import type { CertificateBundle } from '../security/certificate-bundle.js';
import { TlsCredentialUnavailableError } from '../security/errors.js';
import { meshServerIdentityCheck } from '../security/mesh-server-identity.js';
import type { MeshTls } from '../security/mesh-tls.js';
import { isMeshEndpoint, MESH_ALPN_HTTP2, meshTlsRefusal } from '../security/mesh-tls.js';
import { subjectAltNameCheck } from '../security/subject-alt-names.js';
import type { TlsOrigination } from '../security/tls-settings.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';
import { registerTransport } from './registry.js';

/**
 * How one subchannel connects: TLS settings fixed when it is made (a rotation or a rule change
 * makes a new subchannel; the old one drains); `id` tells two transports apart.
 */
export interface GrpcTransport {
  readonly id: string;
  /** `DestinationRule shop/api spec.trafficPolicy.tls` or `auto mTLS`, for messages. */
  readonly source: string;
  /** Node's TLS options every connection gets (the socket is added per connection). */
  readonly options: ConnectionOptions;
}

/** Only HTTP/2 carries gRPC: a TLS server that does not pick `h2` cannot be spoken to. */
const GRPC_ALPN_ORIGINATE: readonly string[] = Object.freeze(['h2']);

const meshMemo = new WeakMap<MeshTls, WeakMap<CertificateBundle, GrpcTransport>>();
const originateMemo = new WeakMap<TlsOrigination, Map<string, GrpcTransport>>();

/** Mesh mTLS with the workload's certificates: Istio's SNI, its ALPN for HTTP/2, the server's SPIFFE identity checked. */
function meshTransport(tls: MeshTls, bundle: CertificateBundle): GrpcTransport {
  let byBundle = meshMemo.get(tls);
  if (!byBundle) meshMemo.set(tls, (byBundle = new WeakMap()));
  let transport = byBundle.get(bundle);
  if (!transport) {
    transport = Object.freeze({
      id: `${tls.id}|${bundle.fingerprint}`,
      source: tls.source,
      options: {
        servername: tls.sni,
        secureContext: bundle.secureContext,
        ALPNProtocols: [...MESH_ALPN_HTTP2],
        checkServerIdentity: meshServerIdentityCheck(tls),
      },
    });
    registerTransport(transport);
    byBundle.set(bundle, transport);
  }
  return transport;
}

/**
 * A DestinationRule's SIMPLE or MUTUAL TLS: its CA (else Node's trust store), client certificate,
 * CRL, `sni` (else the host the client wrote, as Envoy's auto SNI takes it from `:authority`), and
 * `subjectAltNames` (else the host name check against that name).
 */
function originateTransport(tls: TlsOrigination, authorityHost: string): GrpcTransport {
  let byHost = originateMemo.get(tls);
  if (!byHost) originateMemo.set(tls, (byHost = new Map()));
  let transport = byHost.get(authorityHost);
  if (!transport) {
    const name = tls.sni ?? authorityHost;
    const ip = isIP(name) !== 0;
    const secureContext: SecureContext = createSecureContext({
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.crl !== undefined ? { crl: tls.crl } : {}),
      ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    });
    const options: ConnectionOptions = {
      secureContext,
      ALPNProtocols: [...GRPC_ALPN_ORIGINATE],
      // No SNI for an address (RFC 6066); the certificate is then checked for the address.
      ...(ip ? {} : { servername: name }),
    };
    if (tls.insecureSkipVerify) options.rejectUnauthorized = false;
    else if (tls.subjectAltNames !== undefined) options.checkServerIdentity = subjectAltNameCheck(tls.subjectAltNames, tls.source);
    else options.checkServerIdentity = (_host, cert) => checkServerIdentity(name, cert);
    transport = Object.freeze({ id: `${tls.id}|${authorityHost}`, source: tls.source, options });
    registerTransport(transport);
    byHost.set(authorityHost, transport);
  }
  return transport;
}

/**
 * The transport to `host` of `cluster`: mesh mTLS (ISTIO_MUTUAL, or auto mTLS to an endpoint
 * with the mesh's certificates), the DestinationRule's TLS, or plaintext (undefined); the error
 * when TLS is asked for and cannot be made (never plaintext instead).
 */
export function transportFor(
  cluster: Cluster,
  host: Host,
  authorityHost: string,
  certificates: WorkloadCertificates | undefined,
): GrpcTransport | MeshError | undefined {
  const mesh = cluster.meshTls;
  if (mesh && (!mesh.auto || isMeshEndpoint(host.endpoint))) {
    const bundle = certificates?.current;
    // Without a current bundle the refusal is always there: never plaintext instead.
    if (!bundle) return meshTlsRefusal(mesh, `${host.endpoint.address}:${host.endpoint.port}`, certificates)!;
    return meshTransport(mesh, bundle);
  }
  const tls = cluster.upstreamTls;
  if (tls?.kind !== 'originate') return undefined;
  // Settings whose Secret was never read carry no credentials: nothing may connect with them.
  const ref = tls.credential;
  if (ref?.kind === 'secret')
    return new TlsCredentialUnavailableError({
      resource: ref.resource,
      path: ref.path,
      secret: `${ref.namespace}/${ref.name}`,
      reason: 'it has not been read',
    });
  if (ref?.kind === 'files' && ref.refused)
    return new TlsCredentialUnavailableError({ resource: ref.resource, path: ref.path, secret: undefined, files: ref.files, reason: ref.refused.message });
  return originateTransport(tls, authorityHost);
}

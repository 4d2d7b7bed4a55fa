import type { Endpoint } from '../discovery/endpoint.js';
import type { CertificateBundle } from './certificate-bundle.js';
import { WorkloadCertificateUnavailableError } from './errors.js';
import type { TrustDomains } from './spiffe-id.js';
import { tryParseSpiffeId } from './spiffe-id.js';
import type { WorkloadCertificates } from './workload-certificates.js';

/**
 * The endpoint label Istio's sidecar injector puts on workloads that have the mesh's
 * certificates; a WorkloadEntry with a `serviceAccount` counts as labelled `istio` unless the
 * label says otherwise. Auto mTLS speaks mTLS to such endpoints only.
 */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

/**
 * ALPN an Istio sidecar offers for HTTP to an in-mesh destination (the `istio.alpn` HTTP filter
 * of its outbound listeners, pilot/pkg/xds/filters): the Istio-specific name first, `istio` for
 * older proxies, then the plain protocol so that the server's choice is one HTTP client speaks.
 * An Istio inbound listener picks `http/1.1` or `h2` (its HTTP filter chain, not TCP).
 */
export const MESH_ALPN_HTTP1: readonly string[] = Object.freeze(['istio-http/1.1', 'istio', 'http/1.1']);
export const MESH_ALPN_HTTP2: readonly string[] = Object.freeze(['istio-h2', 'istio', 'h2']);

/**
 * Mutual TLS with the workload's certificates to one destination, resolved for it: from a
 * DestinationRule's `ISTIO_MUTUAL` (every endpoint), or from auto mTLS (only endpoints whose
 * workload has the mesh's certificates, {@link isMeshEndpoint}).
 */
export interface MeshTls {
  readonly kind: 'mesh';
  /** Equal ids, equal settings: a connection made under one serves the other (with the same certificate). */
  readonly id: string;
  /** `DestinationRule shop/api spec.trafficPolicy.tls` or `auto mTLS`, for messages. */
  readonly source: string;
  /** Auto mTLS: plaintext to endpoints without the mesh's certificates. */
  readonly auto: boolean;
  /** Istio's `outbound_.<port>_.<subset>_.<host>`, or the rule's `sni`. */
  readonly sni: string;
  /** The server certificate must carry one of these; empty: any SPIFFE ID of {@link trustDomains}. */
  readonly subjectAltNames: readonly string[];
  readonly trustDomains: TrustDomains;
}

/** Istio's SNI for mTLS to a destination (model.BuildDNSSrvSubsetKey), e.g. `outbound_.9080_.v1_.reviews.shop.svc.cluster.local`. */
export function istioSni(host: string, subset: string | undefined, port: number): string {
  return `outbound_.${port}_.${subset ?? ''}_.${host}`;
}

/** Whether auto mTLS speaks mTLS to this endpoint: Istio's `tlsMode` of the endpoint is `istio`. */
export function isMeshEndpoint(endpoint: Endpoint): boolean {
  return (endpoint.tlsMode ?? endpoint.labels[TLS_MODE_LABEL]) === 'istio';
}

export interface MeshTlsInput {
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number;
  readonly source: string;
  readonly auto: boolean;
  /** The rule's `sni` and `subjectAltNames` (ISTIO_MUTUAL), which win over the computed ones. */
  readonly sni?: string | undefined;
  readonly subjectAltNames?: readonly string[] | undefined;
  /** The destination's service accounts, as {@link serviceIdentities} computes them. */
  readonly serviceAccounts: readonly string[];
  readonly trustDomains: TrustDomains;
}

/**
 * The mesh TLS of a destination, as istiod's `buildUpstreamTLSSettings` makes it for ISTIO_MUTUAL:
 * the rule's SNI, else Istio's; the rule's subjectAltNames, else the service accounts of the
 * destination (no check of names when neither gives any: istiod's rule; sidecarless then
 * requires a SPIFFE ID of the mesh's trust domains, which is stricter).
 */
export function resolveMeshTls(input: MeshTlsInput): MeshTls {
  const sni = input.sni ?? istioSni(input.host, input.subset, input.port);
  const subjectAltNames = Object.freeze([...(input.subjectAltNames ?? input.serviceAccounts)]);
  const id = `mesh:${JSON.stringify([input.auto, sni, subjectAltNames, [...input.trustDomains.all]])}`;
  return Object.freeze({ kind: 'mesh', id, source: input.source, auto: input.auto, sni, subjectAltNames, trustDomains: input.trustDomains });
}

/** What makes up a destination's service accounts (Istio's `ServiceAccounts` of a service). */
export interface ServiceIdentitySources {
  /** Identities as written (ServiceEntry `subjectAltNames`, the `alpha.istio.io/canonical-serviceaccounts` annotation). */
  readonly subjectAltNames?: readonly string[] | undefined;
  /** `namespace/name` Kubernetes service accounts (WorkloadEntry `serviceAccount`, the `alpha.istio.io/kubernetes-serviceaccounts` annotation). */
  readonly serviceAccounts?: readonly string[] | undefined;
}

/**
 * The identities the workloads of a destination run as, as istiod computes them: identities as
 * written, plus `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` for each service account, each SPIFFE
 * ID repeated in every trust domain alias (spiffe.ExpandWithTrustDomains). Sorted, no repeats.
 */
export function serviceIdentities(sources: readonly ServiceIdentitySources[], trustDomains: TrustDomains): string[] {
  const ids = new Set<string>();
  for (const s of sources) {
    for (const san of s.subjectAltNames ?? []) if (san !== '') ids.add(san);
    for (const account of s.serviceAccounts ?? []) {
      const slash = account.indexOf('/');
      if (slash > 0 && slash < account.length - 1) ids.add(`spiffe://${trustDomains.trustDomain}/ns/${account.slice(0, slash)}/sa/${account.slice(slash + 1)}`);
    }
  }
  if (trustDomains.aliases.length > 0) {
    for (const id of [...ids]) {
      const parsed = tryParseSpiffeId(id);
      if (!parsed) continue;
      for (const alias of trustDomains.aliases) ids.add(`spiffe://${alias}${parsed.path}`);
    }
  }
  return [...ids].sort();
}

/**
 * Why mesh TLS to `destination` cannot be made now (no workload certificates), or undefined when
 * the certificates are there. Nothing is then sent: never plaintext instead.
 */
export function meshTlsRefusal(
  tls: MeshTls,
  destination: string,
  certificates: WorkloadCertificates | undefined,
): WorkloadCertificateUnavailableError | undefined {
  if (certificates?.current) return undefined;
  return new WorkloadCertificateUnavailableError(destination, tls.source, certificates !== undefined, certificates?.lastError);
}

/** The workload's certificates a connection under `tls` uses: the id of the pair is part of the pool's identity. */
export interface MeshTlsCredentials {
  readonly tls: MeshTls;
  readonly bundle: CertificateBundle;
  /** `tls.id` and the certificate's fingerprint. */
  readonly id: string;
}

export function meshTlsCredentials(tls: MeshTls, bundle: CertificateBundle): MeshTlsCredentials {
  return { tls, bundle, id: `${tls.id}|${bundle.fingerprint}` };
}

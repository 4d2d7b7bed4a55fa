/** Istio locality: `region/zone/subzone`; empty parts are unknown. */
export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** One network endpoint of a service (a "pod"): what discovery knows, immutable. */
export interface Endpoint {
  /** `address:port`, unique within a cluster. */
  readonly key: string;
  /** IP address (or a DNS name for resolution: DNS service entries). */
  readonly address: string;
  readonly port: number;
  /** Relative load-balancing weight (ServiceEntry/WorkloadEntry `weight`); 1 when unset. */
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly locality: Locality;
  readonly network?: string;
  /** Kubernetes: ready is false while terminating; such endpoints take no new requests. */
  readonly ready: boolean;
  /**
   * Istio's `tlsMode` of the endpoint when it does not come from the `security.istio.io/tlsMode`
   * label: `istio` for a WorkloadEntry with a `serviceAccount` (see `isMeshEndpoint`).
   */
  readonly tlsMode?: string;
}

export const UNKNOWN_LOCALITY: Locality = Object.freeze({ region: '', zone: '', subZone: '' });

/** Parses Istio's `region/zone/subzone` locality string. */
export function parseLocality(text: string | undefined): Locality {
  if (!text) return UNKNOWN_LOCALITY;
  const [region = '', zone = '', subZone = ''] = text.split('/');
  return { region, zone, subZone };
}

/** True when every label of `selector` is present in `labels` with the same value. */
export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const key in selector) if (labels[key] !== selector[key]) return false;
  return true;
}

// The PeerAuthentication in force, as config compiles it (config/compile/security/peer-authentication.ts)
// and the inbound servers and auto mTLS read it.
import type { ResourceRef } from '../issue.js';

/** The mTLS mode of an inbound port once UNSET is resolved. */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/**
 * The PeerAuthentication in force for this workload (its namespace and labels), composed as istiod
 * does: the oldest mesh-wide policy (root namespace, no selector), then the oldest namespace-wide
 * one, then the oldest workload one (selector matching the labels, outside the root namespace),
 * each overriding the mode of the one before unless UNSET; `portLevelMtls` of the workload policy
 * last, an UNSET port inheriting the workload's mode. Nothing at all gives PERMISSIVE, Istio's
 * default.
 */
export interface PeerAuthenticationPolicy {
  /** The mode of every port without a port-level setting. */
  readonly mode: MtlsMode;
  /** Port-level modes (container ports, as the application listens on them). */
  readonly ports: ReadonlyMap<number, MtlsMode>;
  /** The resources that were composed, by scope. */
  readonly sources: {
    readonly mesh?: ResourceRef;
    readonly namespace?: ResourceRef;
    readonly workload?: ResourceRef;
  };
  /** The mode for connections to `port`. */
  modeFor(port: number): MtlsMode;
}

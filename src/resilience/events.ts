/** Why outlier detection ejected a host (Envoy's `OutlierEjectionType` names, kebab-cased). */
export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-failure' | 'consecutive-local-origin-failure';

/** A host left or rejoined its cluster's balancing set because of outlier detection. */
export interface EjectionEvent {
  readonly action: 'eject' | 'uneject';
  /** The destination service host (FQDN). */
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number;
  /** The endpoint, `address:port`. */
  readonly endpoint: string;
  /** Set on `eject`. */
  readonly reason: EjectionReason | undefined;
  /** How many times this host has been ejected so far. */
  readonly ejections: number;
  /** On `eject`: how long the host stays out (returned at the first check after it). */
  readonly durationMs: number | undefined;
}

/** Breaker states, as opossum names them (`halfOpen` spelled as an event name). */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** A service breaker changed state. */
export interface BreakerEvent {
  /** The destination service host (FQDN) the breaker guards. */
  readonly host: string;
  readonly state: BreakerState;
}

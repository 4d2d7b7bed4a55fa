// The `sidecarless/inspect` entry: the shapes of what the mesh shows about itself (`mesh.inspect()`,
// the admin server, `mesh.snapshot`). Types only, so importing it loads nothing.
export type {
  DnsWatchHealth,
  EndpointHealth,
  InspectedBreaker,
  InspectedCluster,
  InspectedClusterPolicy,
  InspectedConfig,
  InspectedConfigSource,
  InspectedDestination,
  InspectedDnsName,
  InspectedEndpoint,
  InspectedIssue,
  InspectedLimits,
  InspectedOutlierDetection,
  InspectedRateLimit,
  InspectedResource,
  InspectedRoute,
  InspectedRouteTable,
  MeshInspection,
} from './inspection.js';
export type { AdminServer, AdminServerOptions } from './admin-server.js';
export type { EffectiveDestinationRule, Resolution, ServiceDef, ServicePort, Snapshot, SubsetDef, TrafficPolicySpec } from '../config/snapshot.js';
export type { MeshResource, ResourceMetadata } from '../config/resource.js';

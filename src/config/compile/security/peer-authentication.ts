import type { PeerAuthenticationMutualTLS, PeerAuthenticationSpec } from '../../schema/generated/types.js';
import type { CompileContext } from '../context.js';
import { sortByAge } from '../context.js';
import type { MeshResource } from '../../resource.js';
import { resourceRef } from '../../resource.js';
import { labelsMatch } from '../../../discovery/endpoint.js';
import type { MtlsMode, PeerAuthenticationPolicy } from '../../../security/peer-authentication-policy.js';

type PeerAuthentication = MeshResource<'PeerAuthentication', PeerAuthenticationSpec>;

function explicitMode(mtls: PeerAuthenticationMutualTLS | undefined): MtlsMode | undefined {
  const mode = mtls?.mode;
  return mode === undefined || mode === 'UNSET' ? undefined : mode;
}

function hasSelector(spec: PeerAuthenticationSpec): boolean {
  return Object.keys(spec.selector?.matchLabels ?? {}).length > 0;
}

/** Composes the PeerAuthentication policy for the workload `ctx` describes. */
export function compilePeerAuthentication(resources: readonly MeshResource[], ctx: CompileContext): PeerAuthenticationPolicy {
  const policies = sortByAge(resources.filter((r): r is PeerAuthentication => r.kind === 'PeerAuthentication'));
  let mesh: PeerAuthentication | undefined;
  let namespace: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  for (const p of policies) {
    const ns = p.metadata.namespace;
    if (!hasSelector(p.spec)) {
      if (ns === ctx.rootNamespace) mesh ??= p;
      else if (ns === ctx.namespace) namespace ??= p;
    } else if (ns === ctx.namespace && ns !== ctx.rootNamespace && labelsMatch(p.spec.selector?.matchLabels ?? {}, ctx.workloadLabels)) {
      // istiod ignores selector policies in the root namespace.
      workload ??= p;
    }
  }
  let mode: MtlsMode = 'PERMISSIVE';
  for (const p of [mesh, namespace, workload]) mode = explicitMode(p?.spec.mtls) ?? mode;
  const ports = new Map<number, MtlsMode>();
  for (const [port, mtls] of Object.entries(workload?.spec.portLevelMtls ?? {})) ports.set(Number(port), explicitMode(mtls) ?? mode);
  const resolved = mode;
  return {
    mode: resolved,
    ports,
    sources: {
      ...(mesh ? { mesh: resourceRef(mesh) } : {}),
      ...(namespace ? { namespace: resourceRef(namespace) } : {}),
      ...(workload ? { workload: resourceRef(workload) } : {}),
    },
    modeFor: (port: number) => ports.get(port) ?? resolved,
  };
}

/**
 * The mTLS mode istiod infers for the services of `namespace` when it decides auto mTLS on the
 * client side (PushContext.BestEffortInferServiceMTLSMode): the oldest namespace-wide
 * PeerAuthentication there (no selector), an UNSET one inheriting the mesh-wide policy's mode (the
 * oldest in the root namespace without a selector), PERMISSIVE when neither says. Workload and
 * port-level policies are not looked at, as istiod cannot tell which workloads serve a service.
 */
export function namespaceMtlsMode(resources: readonly MeshResource[], rootNamespace: string, namespace: string): MtlsMode {
  let mesh: PeerAuthentication | undefined;
  let own: PeerAuthentication | undefined;
  for (const p of sortByAge(resources.filter((r): r is PeerAuthentication => r.kind === 'PeerAuthentication'))) {
    if (hasSelector(p.spec)) continue;
    if (p.metadata.namespace === rootNamespace) mesh ??= p;
    else if (p.metadata.namespace === namespace) own ??= p;
  }
  return explicitMode(own?.spec.mtls) ?? explicitMode(mesh?.spec.mtls) ?? 'PERMISSIVE';
}

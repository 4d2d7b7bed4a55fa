// Reads the Istio CRDs kept in schema/istio/, the Gateway API route CRDs in schema/gateway-api/ (and
// sidecarless's own in deploy/crds/) and derives what the generators need: the spec schema
// of each kind and served version (descriptions stripped, sidecarless annotations added), type names
// for object nodes, and a field list with one-line descriptions for the documentation.
import { readdirSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

export const ROOT = new URL('../../', import.meta.url);
export const SCHEMA_DIR = new URL('schema/istio/', ROOT);
/** sidecarless's own kinds (RateLimitPolicy), shipped for clusters to apply. */
export const OWN_CRD_DIR = new URL('deploy/crds/', ROOT);
/** Gateway API's HTTPRoute and GRPCRoute CRDs, experimental channel (its README says which release and why). */
export const GATEWAY_SCHEMA_DIR = new URL('schema/gateway-api/', ROOT);

/** Schema keywords the validator implements, in the order the generator prints them; any other keyword fails the generator loudly. */
export const SCHEMA_KEYWORDS = [
  'type',
  'format',
  'enum',
  'nullable',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'oneOf',
  'anyOf',
  'allOf',
  'not',
  'x-kubernetes-validations',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'default',
];
const KNOWN_KEYWORDS = new Set(SCHEMA_KEYWORDS);
const KNOWN_FORMATS = new Set(['int32', 'int64', 'uint32', 'double', 'float', 'byte', 'date-time']);
const DURATION_RULE = "duration(self) >= duration('1ms')";

/**
 * google.protobuf.Duration fields that carry no CEL duration rule in the CRD (so nothing in the
 * schema says they are durations). Matched as a suffix of the field path, `[]`/`{}` ignored. The
 * generator fails if one matches nothing, so a renamed field cannot drop its check silently.
 */
const EXTRA_DURATION_SUFFIXES = [
  'connectionPool.tcp.idleTimeout',
  'inboundConnectionPool.tcp.idleTimeout',
  'consistentHash.httpCookie.ttl',
  'retryBudget.budgetInterval',
];

/**
 * Names (Istio's proto message names where they are unambiguous) for object nodes, keyed by
 * `Kind:path`. Other object nodes are named `<ParentType><Field>`.
 */
const TYPE_NAMES = {
  'VirtualService:spec.http[]': 'HTTPRoute',
  'VirtualService:spec.http[].match[]': 'HTTPMatchRequest',
  'VirtualService:spec.http[].match[].uri': 'StringMatch',
  'VirtualService:spec.http[].route[]': 'HTTPRouteDestination',
  'VirtualService:spec.http[].route[].destination': 'Destination',
  'VirtualService:spec.http[].route[].destination.port': 'PortSelector',
  'VirtualService:spec.http[].route[].headers': 'Headers',
  'VirtualService:spec.http[].route[].headers.request': 'HeaderOperations',
  'VirtualService:spec.http[].redirect': 'HTTPRedirect',
  'VirtualService:spec.http[].directResponse': 'HTTPDirectResponse',
  'VirtualService:spec.http[].directResponse.body': 'HTTPBody',
  'VirtualService:spec.http[].delegate': 'Delegate',
  'VirtualService:spec.http[].rewrite': 'HTTPRewrite',
  'VirtualService:spec.http[].rewrite.uriRegexRewrite': 'RegexRewrite',
  'VirtualService:spec.http[].retries': 'HTTPRetry',
  'VirtualService:spec.http[].fault': 'HTTPFaultInjection',
  'VirtualService:spec.http[].fault.delay': 'HTTPFaultInjectionDelay',
  'VirtualService:spec.http[].fault.abort': 'HTTPFaultInjectionAbort',
  'VirtualService:spec.http[].fault.delay.percentage': 'Percent',
  'VirtualService:spec.http[].mirrors[]': 'HTTPMirrorPolicy',
  'VirtualService:spec.http[].corsPolicy': 'CorsPolicy',
  'VirtualService:spec.tcp[]': 'TCPRoute',
  'VirtualService:spec.tcp[].match[]': 'L4MatchAttributes',
  'VirtualService:spec.tcp[].route[]': 'RouteDestination',
  'VirtualService:spec.tls[]': 'TLSRoute',
  'VirtualService:spec.tls[].match[]': 'TLSMatchAttributes',
  'DestinationRule:spec.workloadSelector': 'PolicyWorkloadSelector',
  'DestinationRule:spec.subsets[]': 'Subset',
  'DestinationRule:spec.trafficPolicy': 'TrafficPolicy',
  'DestinationRule:spec.trafficPolicy.portLevelSettings[]': 'PortTrafficPolicy',
  'DestinationRule:spec.trafficPolicy.loadBalancer': 'LoadBalancerSettings',
  'DestinationRule:spec.trafficPolicy.loadBalancer.consistentHash': 'ConsistentHashLB',
  'DestinationRule:spec.trafficPolicy.loadBalancer.consistentHash.httpCookie': 'HTTPCookie',
  'DestinationRule:spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[]': 'HTTPCookieAttribute',
  'DestinationRule:spec.trafficPolicy.loadBalancer.consistentHash.ringHash': 'RingHash',
  'DestinationRule:spec.trafficPolicy.loadBalancer.consistentHash.maglev': 'MagLev',
  'DestinationRule:spec.trafficPolicy.loadBalancer.localityLbSetting': 'LocalityLoadBalancerSetting',
  'DestinationRule:spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[]': 'LocalityLoadBalancerSettingDistribute',
  'DestinationRule:spec.trafficPolicy.loadBalancer.localityLbSetting.failover[]': 'LocalityLoadBalancerSettingFailover',
  'DestinationRule:spec.trafficPolicy.loadBalancer.warmup': 'WarmupConfiguration',
  'DestinationRule:spec.trafficPolicy.loadBalancer.zoneAwareLbSetting': 'ZoneAwareLoadBalancerSetting',
  'DestinationRule:spec.trafficPolicy.connectionPool': 'ConnectionPoolSettings',
  'DestinationRule:spec.trafficPolicy.connectionPool.tcp': 'TCPSettings',
  'DestinationRule:spec.trafficPolicy.connectionPool.tcp.tcpKeepalive': 'TCPKeepalive',
  'DestinationRule:spec.trafficPolicy.connectionPool.http': 'HTTPSettings',
  'DestinationRule:spec.trafficPolicy.connectionPool.http.http2KeepAlive': 'HTTP2KeepAlive',
  'DestinationRule:spec.trafficPolicy.outlierDetection': 'OutlierDetection',
  'DestinationRule:spec.trafficPolicy.tls': 'ClientTLSSettings',
  'DestinationRule:spec.trafficPolicy.proxyProtocol': 'ProxyProtocol',
  'DestinationRule:spec.trafficPolicy.tunnel': 'TunnelSettings',
  'DestinationRule:spec.trafficPolicy.retryBudget': 'RetryBudget',
  'ServiceEntry:spec.ports[]': 'ServicePort',
  'ServiceEntry:spec.endpoints[]': 'WorkloadEntrySpec',
  'ServiceEntry:spec.workloadSelector': 'WorkloadSelector',
  'Sidecar:spec.egress[]': 'IstioEgressListener',
  'Sidecar:spec.egress[].port': 'SidecarPort',
  'Sidecar:spec.ingress[]': 'IstioIngressListener',
  'Sidecar:spec.ingress[].tls': 'ServerTLSSettings',
  'Sidecar:spec.ingress[].tls.tlsCertificates[]': 'ServerTLSCertificate',
  'Sidecar:spec.outboundTrafficPolicy': 'OutboundTrafficPolicy',
  'PeerAuthentication:spec.mtls': 'PeerAuthenticationMutualTLS',
  'PeerAuthentication:spec.selector': 'PolicyWorkloadSelector',
  'AuthorizationPolicy:spec.selector': 'PolicyWorkloadSelector',
  'AuthorizationPolicy:spec.targetRef': 'PolicyTargetReference',
  'AuthorizationPolicy:spec.provider': 'ExtensionProvider',
  'AuthorizationPolicy:spec.rules[]': 'AuthorizationRule',
  'AuthorizationPolicy:spec.rules[].from[]': 'RuleFrom',
  'AuthorizationPolicy:spec.rules[].from[].source': 'Source',
  'AuthorizationPolicy:spec.rules[].to[]': 'RuleTo',
  'AuthorizationPolicy:spec.rules[].to[].operation': 'Operation',
  'AuthorizationPolicy:spec.rules[].when[]': 'Condition',
  'RequestAuthentication:spec.selector': 'PolicyWorkloadSelector',
  'RequestAuthentication:spec.targetRef': 'PolicyTargetReference',
  'RequestAuthentication:spec.jwtRules[]': 'JWTRule',
  'RequestAuthentication:spec.jwtRules[].fromHeaders[]': 'JWTHeader',
  'RequestAuthentication:spec.jwtRules[].outputClaimToHeaders[]': 'ClaimToHeader',
  'EnvoyFilter:spec.configPatches[]': 'EnvoyConfigObjectPatch',
  'EnvoyFilter:spec.configPatches[].match': 'EnvoyConfigObjectMatch',
  'EnvoyFilter:spec.configPatches[].match.cluster': 'ClusterMatch',
  'EnvoyFilter:spec.configPatches[].match.listener': 'ListenerMatch',
  'EnvoyFilter:spec.configPatches[].match.listener.filterChain': 'FilterChainMatch',
  'EnvoyFilter:spec.configPatches[].match.listener.filterChain.filter': 'FilterMatch',
  'EnvoyFilter:spec.configPatches[].match.proxy': 'ProxyMatch',
  'EnvoyFilter:spec.configPatches[].match.routeConfiguration': 'RouteConfigurationMatch',
  'EnvoyFilter:spec.configPatches[].match.routeConfiguration.vhost': 'VirtualHostMatch',
  'EnvoyFilter:spec.configPatches[].match.routeConfiguration.vhost.route': 'RouteMatch',
  'EnvoyFilter:spec.configPatches[].match.waypoint': 'WaypointMatch',
  'EnvoyFilter:spec.configPatches[].patch': 'Patch',
  'RateLimitPolicy:spec.limits[]': 'RateLimit',
  'RateLimitPolicy:spec.limits[].match': 'RateLimitMatch',
  'RateLimitPolicy:spec.limits[].key': 'RateLimitKey',
  'RateLimitPolicy:spec.limits[].tokenBucket': 'TokenBucket',
};

/** The same for the Gateway API route kinds, after the Gateway API's Go type names. */
export const GATEWAY_TYPE_NAMES = {
  'HTTPRoute:spec.parentRefs[]': 'ParentReference',
  'HTTPRoute:spec.rules[]': 'HTTPRouteRule',
  'HTTPRoute:spec.rules[].matches[]': 'HTTPRouteMatch',
  'HTTPRoute:spec.rules[].matches[].path': 'HTTPPathMatch',
  'HTTPRoute:spec.rules[].matches[].headers[]': 'HTTPHeaderMatch',
  'HTTPRoute:spec.rules[].matches[].queryParams[]': 'HTTPQueryParamMatch',
  'HTTPRoute:spec.rules[].filters[]': 'HTTPRouteFilter',
  'HTTPRoute:spec.rules[].filters[].requestHeaderModifier': 'HTTPHeaderFilter',
  'HTTPRoute:spec.rules[].filters[].requestHeaderModifier.set[]': 'HTTPHeader',
  'HTTPRoute:spec.rules[].filters[].requestRedirect': 'HTTPRequestRedirectFilter',
  'HTTPRoute:spec.rules[].filters[].requestRedirect.path': 'HTTPPathModifier',
  'HTTPRoute:spec.rules[].filters[].urlRewrite': 'HTTPURLRewriteFilter',
  'HTTPRoute:spec.rules[].filters[].requestMirror': 'HTTPRequestMirrorFilter',
  'HTTPRoute:spec.rules[].filters[].requestMirror.backendRef': 'BackendObjectReference',
  'HTTPRoute:spec.rules[].filters[].requestMirror.fraction': 'Fraction',
  'HTTPRoute:spec.rules[].filters[].cors': 'HTTPCORSFilter',
  'HTTPRoute:spec.rules[].filters[].extensionRef': 'LocalObjectReference',
  'HTTPRoute:spec.rules[].backendRefs[]': 'HTTPBackendRef',
  'HTTPRoute:spec.rules[].timeouts': 'HTTPRouteTimeouts',
  'HTTPRoute:spec.rules[].retry': 'HTTPRouteRetry',
  'HTTPRoute:spec.rules[].sessionPersistence': 'SessionPersistence',
  'GRPCRoute:spec.rules[]': 'GRPCRouteRule',
  'GRPCRoute:spec.rules[].matches[]': 'GRPCRouteMatch',
  'GRPCRoute:spec.rules[].matches[].method': 'GRPCMethodMatch',
  'GRPCRoute:spec.rules[].matches[].headers[]': 'GRPCHeaderMatch',
  'GRPCRoute:spec.rules[].filters[]': 'GRPCRouteFilter',
  'GRPCRoute:spec.rules[].backendRefs[]': 'GRPCBackendRef',
};

export class GeneratorError extends Error {}

function fail(message) {
  throw new GeneratorError(message);
}

/** Loads every CRD in schema/istio/, deploy/crds/, then schema/gateway-api/, each sorted by file name. */
export function loadCrds() {
  const files = [SCHEMA_DIR, OWN_CRD_DIR, GATEWAY_SCHEMA_DIR].flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => ({ file: f, url: new URL(f, dir) })),
  );
  const crds = [];
  for (const { file, url } of files) {
    for (const doc of parseAllDocuments(readFileSync(url, 'utf8'))) {
      if (doc.errors.length > 0) fail(`${file}: ${doc.errors[0].message}`);
      const crd = doc.toJS();
      if (crd?.kind !== 'CustomResourceDefinition') continue;
      crds.push({
        file,
        kind: crd.spec.names.kind,
        group: crd.spec.group,
        versions: crd.spec.versions
          .filter((v) => v.served)
          .map((v) => ({
            name: v.name,
            storage: v.storage === true,
            spec: v.schema?.openAPIV3Schema?.properties?.spec ?? fail(`${file} ${v.name}: no spec schema`),
          })),
      });
    }
  }
  return crds;
}

/** The CRDs of `kinds`, in that order; fails when one is missing. */
export function crdsFor(kinds) {
  const all = loadCrds();
  return kinds.map((kind) => all.find((c) => c.kind === kind) ?? fail(`no CRD for ${kind} in schema/istio/, deploy/crds/ or schema/gateway-api/`));
}

function pathSegments(path) {
  return path.replace(/\[\]|\{\}/g, '').split('.');
}

/**
 * Returns the spec schema without descriptions, with `x-sidecarless-duration` and
 * `x-sidecarless-re2` added, after checking that every keyword is one the validator implements.
 * `matchedSuffixes` collects which EXTRA_DURATION_SUFFIXES matched.
 */
export function stripSchema(node, where, path, matchedSuffixes, inCombinator = false) {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) fail(`${where} ${path}: not a schema object`);
  const out = {};
  for (const key of Object.keys(node)) {
    if (key === 'description') continue;
    if (!KNOWN_KEYWORDS.has(key)) fail(`${where} ${path}: schema keyword '${key}' is not implemented by the validator`);
    const value = node[key];
    switch (key) {
      case 'properties':
        out.properties = {};
        for (const name of Object.keys(value).sort()) {
          out.properties[name] = stripSchema(value[name], where, `${path}.${name}`, matchedSuffixes);
        }
        break;
      case 'items':
        out.items = stripSchema(value, where, `${path}[]`, matchedSuffixes);
        break;
      case 'additionalProperties':
        if (typeof value === 'boolean') fail(`${where} ${path}: boolean additionalProperties is not implemented`);
        out.additionalProperties = stripSchema(value, where, `${path}{}`, matchedSuffixes);
        break;
      case 'oneOf':
      case 'anyOf':
      case 'allOf':
        out[key] = value.map((s) => stripSchema(s, where, path, matchedSuffixes, true));
        break;
      case 'not':
        out.not = stripSchema(value, where, path, matchedSuffixes, true);
        break;
      case 'x-kubernetes-validations':
        out[key] = value.map((r) => {
          for (const k of Object.keys(r)) {
            if (k !== 'rule' && k !== 'message') fail(`${where} ${path}: CEL rule field '${k}' is not implemented`);
          }
          return { rule: r.rule, message: r.message ?? `failed rule: ${r.rule}` };
        });
        break;
      case 'format':
        if (!KNOWN_FORMATS.has(value)) fail(`${where} ${path}: format '${value}' is not implemented`);
        out.format = value;
        break;
      default:
        out[key] = value;
    }
  }
  if (!inCombinator) {
    if (out.oneOf || out.anyOf || out.not) checkExclusiveShape(out, `${where} ${path}`);
    for (const sub of out.allOf ?? []) {
      if (Object.keys(sub).length !== 1 || !sub.oneOf) fail(`${where} ${path}: allOf other than a list of oneOf is not implemented`);
      checkExclusiveShape(sub, `${where} ${path}`);
    }
  }
  if (out.type === 'string') {
    const segments = pathSegments(path).join('.');
    const suffix = EXTRA_DURATION_SUFFIXES.find((s) => segments.endsWith(`.${s}`));
    if (suffix) matchedSuffixes.add(suffix);
    if (suffix || out['x-kubernetes-validations']?.some((r) => r.rule === DURATION_RULE)) {
      out['x-sidecarless-duration'] = true;
    }
    if (/^\[?RE2 style regex/.test(node.description ?? '')) out['x-sidecarless-re2'] = true;
  }
  return out;
}

/**
 * Istio expresses "at most one of a, b, c" as
 * `oneOf: [{not: {anyOf: [{required: [a]}, ...]}}, {required: [a]}, ...]`; that is the only use of
 * oneOf/anyOf/not the validator implements (src/config/validate/exclusive-fields.ts).
 */
function checkExclusiveShape(node, where) {
  if (!node.oneOf) {
    if (node.anyOf || node.not) fail(`${where}: anyOf/not outside Istio's oneOf pattern is not implemented`);
    return;
  }
  const [first, ...rest] = node.oneOf;
  const names = rest.map((s) => (Object.keys(s).length === 1 && s.required?.length === 1 ? s.required[0] : undefined));
  const negated = first?.not?.anyOf?.map((s) => (Object.keys(s).length === 1 && s.required?.length === 1 ? s.required[0] : undefined));
  const ok =
    Object.keys(first ?? {}).length === 1 &&
    Object.keys(first.not).length === 1 &&
    negated &&
    names.every((n) => n !== undefined) &&
    JSON.stringify(negated) === JSON.stringify(names);
  if (!ok) fail(`${where}: oneOf shape is not Istio's "at most one of" pattern: ${JSON.stringify(node.oneOf)}`);
}

/**
 * Per kind: `{ kind, group, storageVersion, versions: [{ name, schema }] }` with the stripped
 * schemas; fails when an EXTRA_DURATION_SUFFIXES entry matches nothing.
 */
export function strippedKinds(kinds) {
  const matched = new Set();
  const result = crdsFor(kinds).map((crd) => ({
    kind: crd.kind,
    group: crd.group,
    storageVersion: (crd.versions.find((v) => v.storage) ?? crd.versions[0]).name,
    versions: crd.versions.map((v) => ({ name: v.name, schema: stripSchema(v.spec, `${crd.kind} ${v.name}`, 'spec', matched) })),
    raw: crd.versions.find((v) => v.storage) ?? crd.versions[0],
  }));
  const unmatched = EXTRA_DURATION_SUFFIXES.filter((s) => !matched.has(s));
  if (unmatched.length > 0) fail(`duration fields not found in the schema: ${unmatched.join(', ')}`);
  return result;
}

/** A node's structure as text, independent of the order its keys were written in. */
export function canonical(node) {
  return JSON.stringify(node, (_key, value) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((k) => [k, value[k]]),
        )
      : value,
  );
}

function pascal(name) {
  return name.replace(/(^|[_-])([a-zA-Z0-9])/g, (_, __, c) => c.toUpperCase());
}

/** Walks object nodes with properties: visit(node, path, parentTypeName, fieldName). */
function walkObjects(node, path, visit, parent, field) {
  if (node.properties) visit(node, path, parent, field);
  const here = node.properties ? path : undefined;
  for (const [name, child] of Object.entries(node.properties ?? {})) walkObjects(child, `${path}.${name}`, visit, here, name);
  if (node.items) walkObjects(node.items, `${path}[]`, visit, parent, field);
  if (node.additionalProperties) walkObjects(node.additionalProperties, `${path}{}`, visit, parent, field);
}

/**
 * Names every distinct object structure of the storage versions: hand-picked names first, then
 * `<ParentType><Field>`. Returns `{ nameOf(node), aliases: [[alias, target]], order: [name] }`.
 * Structures are compared without descriptions, so one type serves every place it occurs.
 */
export function nameTypes(kinds, typeNames = TYPE_NAMES) {
  const byKey = new Map(); // canonical -> name
  const aliases = [];
  const roots = kinds.map((k) => ({ kind: k.kind, schema: k.versions.find((v) => v.name === k.storageVersion).schema }));
  const taken = new Map(); // name -> canonical
  const assign = (node, name, why) => {
    const key = canonical(node);
    const existing = byKey.get(key);
    if (existing !== undefined) {
      if (existing !== name && why === 'hand' && !aliases.some(([a]) => a === name)) aliases.push([name, existing]);
      return;
    }
    if (taken.has(name)) {
      fail(`type name ${name} would name two different structures (${why}); add an entry to TYPE_NAMES (or GATEWAY_TYPE_NAMES) in scripts/lib/istio-crds.mjs`);
    }
    taken.set(name, key);
    byKey.set(key, name);
  };
  for (const { kind, schema } of roots) {
    assign(schema, `${kind}Spec`, 'hand');
    walkObjects(schema, 'spec', (node, path) => {
      const name = typeNames[`${kind}:${path}`];
      if (name) assign(node, name, 'hand');
    });
  }
  for (const { kind, schema } of roots) {
    const pathName = new Map([['spec', `${kind}Spec`]]);
    walkObjects(schema, 'spec', (node, path, parentPath, field) => {
      const name = byKey.get(canonical(node)) ?? `${pathName.get(parentPath)}${pascal(field)}`;
      assign(node, name, `derived for ${kind} ${path}`);
      pathName.set(path, byKey.get(canonical(node)));
    });
  }
  for (const key of Object.keys(typeNames)) {
    const [kind, path] = key.split(':');
    const root = roots.find((r) => r.kind === kind);
    let found = false;
    if (root)
      walkObjects(root.schema, 'spec', (_n, p) => {
        if (p === path) found = true;
      });
    if (!found) fail(`TYPE_NAMES entry ${key} matches no object in the schema`);
  }
  return { nameOf: (node) => byKey.get(canonical(node)), aliases };
}

/** First sentence of a CRD description, on one line, for tables and TSDoc. */
export function summary(description) {
  if (!description) return '';
  const para = description
    .split(/\n\s*\n/)[0]
    .replace(/\s+/g, ' ')
    .trim();
  const match = /^(.*?[.!?])(\s|$)/.exec(para);
  let text = match ? match[1] : para;
  // Istio prefixes with "Optional." / "REQUIRED." on their own; keep what follows too.
  if (/^(Optional|REQUIRED|OPTIONAL)[.:]?$/i.test(text) && match) {
    const restMatch = /^(.*?[.!?])(\s|$)/.exec(para.slice(match[0].length));
    if (restMatch) text = `${text} ${restMatch[1]}`;
  }
  return text;
}

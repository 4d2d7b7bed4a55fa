import type { FieldPath } from '../../document.js';
import type { IssueSeverity } from '../../../issue.js';
import { re2SyntaxError } from '../../../match/regex.js';
import { describeTyped, quoteText } from '../describe.js';

/** Reports one finding at a field path (the path starts at the document: `spec`, ...). */
export type RouteReport = (severity: IssueSeverity, code: string, message: string, path: FieldPath) => void;

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Filters sidecarless does not implement: rather than route without them, the route is refused. */
const UNSUPPORTED_FILTERS: Readonly<Record<string, string>> = {
  // istiod rejects an ExtensionRef filter it does not know too.
  ExtensionRef: 'an ExtensionRef filter names an implementation-specific resource; sidecarless implements none',
  ExternalAuth: 'the ExternalAuth filter is not implemented (use an AuthorizationPolicy with a CUSTOM action provider)',
};
/** As a VirtualService's corsPolicy: CORS is for browsers, which never call through an in-process client. */
const CORS_NOT_APPLICABLE =
  'the CORS filter answers browsers; browsers reach the mesh through an ingress gateway, never through an in-process client, so it is ignored here (not applicable)';
/** The filters a backendRef may carry that sidecarless applies per backend. */
const BACKEND_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier'];

/**
 * What the Gateway API CRD schema cannot say about an HTTPRoute or GRPCRoute spec, given with the
 * CRD's defaults applied (the schema walk checked the rest): how sidecarless reads each parent,
 * what it does not implement (refused, so a route never runs without part of its policy), fields
 * it ignores, and RE2 syntax of RegularExpression matches.
 */
class Checker {
  constructor(private readonly report: RouteReport) {}

  error(path: FieldPath, message: string, code = 'invalid-value'): void {
    this.report('error', code, message, path);
  }

  warn(path: FieldPath, message: string, code: string): void {
    this.report('warning', code, message, path);
  }

  spec(spec: unknown): void {
    if (!isObject(spec)) return;
    const path = ['spec'];
    const parents = list(spec['parentRefs']);
    parents.forEach((p, i) => this.parentRef(p, [...path, 'parentRefs', i]));
    if (parents.length === 0) {
      this.warn(
        [...path, 'parentRefs'],
        'the route names no parent, so it applies to nothing; a mesh route names its Service (group "", kind Service)',
        'no-effect',
      );
    }
    if (list(spec['hostnames']).length > 0 && parents.some(isServiceParent)) {
      this.warn(
        [...path, 'hostnames'],
        'hostnames are ignored for a Service parent: a mesh route applies to calls to its Service, whatever Host they name (as Istio reads it)',
        'ignored',
      );
    }
    if (spec['useDefaultGateways'] === 'All') {
      this.warn(
        [...path, 'useDefaultGateways'],
        'default Gateways are ingress or egress gateways, which run their own proxy; attaching to them does not apply in-process (not applicable)',
        'not-applicable',
      );
    }
    list(spec['rules']).forEach((r, i) => this.rule(r, [...path, 'rules', i]));
  }

  parentRef(value: unknown, path: FieldPath): void {
    if (!isObject(value)) return;
    const { group, kind } = value;
    if (isServiceParent(value)) {
      if (value['sectionName'] !== undefined) {
        this.warn(
          [...path, 'sectionName'],
          'sectionName is not read for a Service parent; the route applies to every port of the Service (use port to pick one)',
          'not-implemented',
        );
      }
      return;
    }
    if (group === 'gateway.networking.k8s.io' && kind === 'Gateway') {
      this.warn(
        path,
        'a Gateway parent attaches the route to an ingress or egress gateway, which runs its own proxy; it does not apply in-process and is skipped (not applicable)',
        'not-applicable',
      );
      return;
    }
    if (group === 'networking.istio.io' && kind === 'ServiceEntry') {
      this.warn(
        path,
        'a ServiceEntry parent is not read yet; the route is skipped for it (attach to a Kubernetes Service, or use a VirtualService)',
        'not-implemented',
      );
      return;
    }
    this.warn(
      path,
      `a ${String(kind)} parent of group "${String(group)}" is not one sidecarless reads; the route is skipped for it (a mesh route names its Service: group "", kind Service)`,
      'ignored',
    );
  }

  rule(value: unknown, path: FieldPath): void {
    if (!isObject(value)) return;
    list(value['matches']).forEach((m, i) => this.match(m, [...path, 'matches', i]));
    list(value['filters']).forEach((f, i) => this.filter(f, [...path, 'filters', i]));
    list(value['backendRefs']).forEach((b, i) => this.backendRef(b, [...path, 'backendRefs', i], true));
    if (value['sessionPersistence'] !== undefined) {
      this.warn(
        [...path, 'sessionPersistence'],
        'sessionPersistence is not implemented yet and has no effect (a DestinationRule consistentHash gives affinity)',
        'not-implemented',
      );
    }
  }

  /** RegularExpression matches: the CRD takes any string; sidecarless compiles RE2. */
  match(value: unknown, path: FieldPath): void {
    if (!isObject(value)) return;
    const p = value['path'];
    if (isObject(p) && p['type'] === 'RegularExpression') this.regex(p['value'], [...path, 'path', 'value']);
    for (const field of ['headers', 'queryParams']) {
      list(value[field]).forEach((h, i) => {
        if (isObject(h) && h['type'] === 'RegularExpression') this.regex(h['value'], [...path, field, i, 'value']);
      });
    }
    const m = value['method'];
    if (isObject(m) && m['type'] === 'RegularExpression') {
      for (const field of ['service', 'method']) this.regex(m[field], [...path, 'method', field]);
    }
  }

  regex(value: unknown, path: FieldPath): void {
    if (typeof value !== 'string') return;
    const problem = re2SyntaxError(value);
    if (problem) this.error(path, `expected an RE2 regular expression: ${problem}`, 'regex');
  }

  filter(value: unknown, path: FieldPath): void {
    if (!isObject(value)) return;
    const type = value['type'];
    if (type === 'CORS') {
      this.warn([...path, 'cors'], CORS_NOT_APPLICABLE, 'not-applicable');
      return;
    }
    const unsupported = typeof type === 'string' ? UNSUPPORTED_FILTERS[type] : undefined;
    if (unsupported) {
      this.error([...path, 'type'], `${unsupported}; rather than route without it, the route is refused`, 'not-supported');
      return;
    }
    const mirror = value['requestMirror'];
    if (type === 'RequestMirror' && isObject(mirror)) this.backendRef(mirror['backendRef'], [...path, 'requestMirror', 'backendRef'], false);
  }

  backendRef(value: unknown, path: FieldPath, weighted: boolean): void {
    if (!isObject(value)) return;
    const { group, kind } = value;
    if (!((group === '' || group === 'core') && kind === 'Service')) {
      this.error(
        [...path, 'kind'],
        `expected a backend of kind Service (group ""), found kind ${quoteText(String(kind))} of group ${quoteText(String(group))}; sidecarless routes to Kubernetes Services only`,
        'not-supported',
      );
    }
    if (!weighted) return;
    list(value['filters']).forEach((f, i) => {
      const type = isObject(f) ? f['type'] : undefined;
      if (typeof type === 'string' && BACKEND_FILTERS.includes(type)) return;
      this.error(
        [...path, 'filters', i, 'type'],
        `a backendRef filter of type ${describeTyped(type)} is not supported (only ${BACKEND_FILTERS.join(' and ')} are); rather than route without it, the route is refused`,
        'not-supported',
      );
    });
  }
}

function isServiceParent(p: unknown): boolean {
  return isObject(p) && (p['group'] === '' || p['group'] === 'core') && p['kind'] === 'Service';
}

/** Milliseconds of a Gateway API duration (already checked against its pattern). */
export function gatewayDurationMs(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of text.matchAll(/([0-9]+)(ms|h|m|s)/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

/**
 * Checks what the CRD schema cannot say of an HTTPRoute or GRPCRoute spec; `spec` has the CRD's
 * defaults applied (parentRef group/kind, backendRef group/kind, match types).
 */
export function checkGatewayRoute(spec: unknown, report: RouteReport): void {
  new Checker(report).spec(spec);
}

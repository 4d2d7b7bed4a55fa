import type { FieldPath } from '../../document.js';
import type { IssueSeverity } from '../../../issue.js';
import { re2SyntaxError } from '../../../routing/regex.js';
import { describeTyped, quoteText } from '../describe.js';
import { suggestion } from '../did-you-mean.js';

/** Reports one finding at a field path (the path starts at the document: `spec`, ...). */
export type RouteReport = (severity: IssueSeverity, code: string, message: string, path: FieldPath) => void;

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Gateway API's Duration: up to four number+unit pairs, units h, m, s, ms (GEP-2257). */
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const PRECISE_HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;
const GRPC_SERVICE_RE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const HTTP_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS'];
const GRPC_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef'];
/** The filter fields, by filter type. */
const FILTER_FIELD: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  ExtensionRef: 'extensionRef',
  CORS: 'cors',
};
/** Filters sidecarless does not implement: istiod rejects an ExtensionRef filter it does not know too. */
const UNSUPPORTED_FILTERS: Readonly<Record<string, string>> = {
  ExtensionRef: 'an ExtensionRef filter names an implementation-specific resource; sidecarless implements none',
};
/** As a VirtualService's corsPolicy: CORS is for browsers, which never call through an in-process client. */
const CORS_NOT_APPLICABLE =
  'the CORS filter answers browsers; browsers reach the mesh through an ingress gateway, never through an in-process client, so it is ignored here (not applicable)';

/** Walks a Gateway API route spec, reporting every problem with its field path. */
class Checker {
  constructor(
    private readonly report: RouteReport,
    private readonly grpc: boolean,
  ) {}

  error(path: FieldPath, message: string, code = 'invalid-value'): void {
    this.report('error', code, message, path);
  }

  warn(path: FieldPath, message: string, code: string): void {
    this.report('warning', code, message, path);
  }

  /** An object with only the listed fields; false (reported) when not an object. */
  object(value: unknown, path: FieldPath, fields: readonly string[]): value is Obj {
    if (!isObject(value)) {
      this.error(path, `expected an object, found ${describeTyped(value)}`, 'type');
      return false;
    }
    for (const key of Object.keys(value)) {
      if (!fields.includes(key)) this.error([...path, key], `unknown field '${key}'${suggestion(key, fields)}`, 'unknown-field');
    }
    return true;
  }

  list(value: unknown, path: FieldPath, max: number): readonly unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.error(path, `expected a list, found ${describeTyped(value)}`, 'type');
      return [];
    }
    if (value.length > max) this.error(path, `expected at most ${max} items, found ${value.length}`, 'max-items');
    return value;
  }

  string(value: unknown, path: FieldPath, options: { required?: boolean; pattern?: RegExp; what?: string; max?: number; values?: readonly string[] } = {}): string | undefined {
    if (value === undefined || value === null) {
      if (options.required) this.error(path, `missing required field '${String(path[path.length - 1])}'`, 'required');
      return undefined;
    }
    if (typeof value !== 'string') {
      this.error(path, `expected a string, found ${describeTyped(value)}`, 'type');
      return undefined;
    }
    if (options.values && !options.values.includes(value)) {
      this.error(path, `expected one of ${options.values.join(', ')}, found ${quoteText(value)}`, 'enum');
      return undefined;
    }
    if ((options.required && value === '') || (options.max !== undefined && value.length > options.max) || (options.pattern && !options.pattern.test(value))) {
      this.error(path, `expected ${options.what ?? 'a non-empty string'}, found ${quoteText(value)}`);
      return undefined;
    }
    return value;
  }

  integer(value: unknown, path: FieldPath, min: number, max: number): number | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.error(path, `expected an integer, found ${describeTyped(value)}`, 'type');
      return undefined;
    }
    if (value < min || value > max) {
      this.error(path, `expected an integer from ${min} to ${max}, found ${value}`, 'range');
      return undefined;
    }
    return value;
  }

  spec(spec: unknown): void {
    const path = ['spec'];
    if (!this.object(spec, path, ['parentRefs', 'hostnames', 'rules'])) return;
    const parents = this.list(spec['parentRefs'], [...path, 'parentRefs'], 32);
    parents.forEach((p, i) => this.parentRef(p, [...path, 'parentRefs', i]));
    if (parents.length === 0) {
      this.warn([...path, 'parentRefs'], 'the route names no parent, so it applies to nothing; a mesh route names its Service (group "", kind Service)', 'no-effect');
    }
    const hostnames = this.list(spec['hostnames'], [...path, 'hostnames'], 16);
    hostnames.forEach((h, i) => this.string(h, [...path, 'hostnames', i], { required: true, pattern: HOSTNAME, max: 253, what: 'a hostname such as "shop.example.com" or "*.example.com"' }));
    if (hostnames.length > 0 && parents.some(isServiceParent)) {
      this.warn([...path, 'hostnames'], 'hostnames are ignored for a Service parent: a mesh route applies to calls to its Service, whatever Host they name (as Istio reads it)', 'ignored');
    }
    const rules = this.list(spec['rules'], [...path, 'rules'], 16);
    let matches = 0;
    rules.forEach((r, i) => (matches += this.rule(r, [...path, 'rules', i])));
    if (matches > 128) this.error([...path, 'rules'], `the total number of matches across all rules must be at most 128, found ${matches}`, 'rule');
    const names = rules.map((r) => (isObject(r) && typeof r['name'] === 'string' ? r['name'] : undefined));
    names.forEach((n, i) => {
      if (n !== undefined && names.indexOf(n) !== i) this.error([...path, 'rules', i, 'name'], `rule name must be unique within the route; "${n}" is used twice`, 'duplicate');
    });
  }

  parentRef(value: unknown, path: FieldPath): void {
    if (!this.object(value, path, ['group', 'kind', 'namespace', 'name', 'sectionName', 'port'])) return;
    const group = this.string(value['group'], [...path, 'group'], { max: 253 }) ?? 'gateway.networking.k8s.io';
    const kind = this.string(value['kind'], [...path, 'kind'], { max: 63 }) ?? 'Gateway';
    this.string(value['name'], [...path, 'name'], { required: true, max: 253 });
    this.string(value['namespace'], [...path, 'namespace'], { pattern: DNS1123_LABEL, max: 63, what: 'a namespace name' });
    this.string(value['sectionName'], [...path, 'sectionName'], { max: 253 });
    this.integer(value['port'], [...path, 'port'], 1, 65535);
    if ((group === '' || group === 'core') && kind === 'Service') {
      if (value['sectionName'] !== undefined) {
        this.warn([...path, 'sectionName'], 'sectionName is not read for a Service parent; the route applies to every port of the Service (use port to pick one)', 'not-implemented');
      }
      return;
    }
    if (group === 'gateway.networking.k8s.io' && kind === 'Gateway') {
      this.warn(path, 'a Gateway parent attaches the route to an ingress or egress gateway, which runs its own proxy; it does not apply in-process and is skipped (not applicable)', 'not-applicable');
      return;
    }
    if (group === 'networking.istio.io' && kind === 'ServiceEntry') {
      this.warn(path, 'a ServiceEntry parent is not read yet; the route is skipped for it (attach to a Kubernetes Service, or use a VirtualService)', 'not-implemented');
      return;
    }
    this.warn(path, `a ${kind} parent of group "${group}" is not one sidecarless reads; the route is skipped for it (a mesh route names its Service: group "", kind Service)`, 'ignored');
  }

  /** Returns the number of matches. */
  rule(value: unknown, path: FieldPath): number {
    const fields = this.grpc
      ? ['name', 'matches', 'filters', 'backendRefs', 'sessionPersistence']
      : ['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry', 'sessionPersistence'];
    if (!this.object(value, path, fields)) return 0;
    this.string(value['name'], [...path, 'name'], { pattern: DNS1123_LABEL, max: 63, what: 'a DNS-1123 label' });
    const matches = this.list(value['matches'], [...path, 'matches'], this.grpc ? 64 : 64);
    matches.forEach((m, i) => (this.grpc ? this.grpcMatch(m, [...path, 'matches', i]) : this.httpMatch(m, [...path, 'matches', i])));
    const filters = this.list(value['filters'], [...path, 'filters'], 16);
    const types = filters.map((f, i) => this.filter(f, [...path, 'filters', i], matches));
    for (const type of ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'CORS']) {
      const at = types.indexOf(type);
      if (at !== -1 && types.indexOf(type, at + 1) !== -1) this.error([...path, 'filters', types.indexOf(type, at + 1)], `${type} filter cannot be repeated`, 'rule');
    }
    if (types.includes('RequestRedirect') && types.includes('URLRewrite')) {
      this.error([...path, 'filters'], 'may specify either a RequestRedirect or a URLRewrite filter, but not both', 'rule');
    }
    const backends = this.list(value['backendRefs'], [...path, 'backendRefs'], 16);
    backends.forEach((b, i) => this.backendRef(b, [...path, 'backendRefs', i], true));
    if (types.includes('RequestRedirect') && backends.length > 0) {
      this.error([...path, 'backendRefs'], 'RequestRedirect filter must not be used together with backendRefs', 'rule');
    }
    if (!this.grpc && value['timeouts'] !== undefined) this.timeouts(value['timeouts'], [...path, 'timeouts']);
    if (!this.grpc && value['retry'] !== undefined) this.retry(value['retry'], [...path, 'retry']);
    if (value['sessionPersistence'] !== undefined) {
      this.warn([...path, 'sessionPersistence'], 'sessionPersistence is not implemented yet and has no effect (a DestinationRule consistentHash gives affinity)', 'not-implemented');
    }
    return matches.length;
  }

  httpMatch(value: unknown, path: FieldPath): void {
    if (!this.object(value, path, ['path', 'headers', 'queryParams', 'method'])) return;
    const p = value['path'];
    if (p !== undefined && this.object(p, [...path, 'path'], ['type', 'value'])) {
      const type = this.string(p['type'], [...path, 'path', 'type'], { values: ['Exact', 'PathPrefix', 'RegularExpression'] }) ?? 'PathPrefix';
      const v = this.string(p['value'], [...path, 'path', 'value'], { max: 1024 }) ?? (p['value'] === undefined ? '/' : undefined);
      if (v !== undefined) {
        if (type === 'RegularExpression') this.regex(v, [...path, 'path', 'value']);
        else this.pathValue(v, [...path, 'path', 'value']);
      }
    }
    this.keyedMatches(value['headers'], [...path, 'headers'], true);
    this.keyedMatches(value['queryParams'], [...path, 'queryParams'], false);
    this.string(value['method'], [...path, 'method'], { values: METHODS });
  }

  grpcMatch(value: unknown, path: FieldPath): void {
    if (!this.object(value, path, ['method', 'headers'])) return;
    const m = value['method'];
    if (m !== undefined && this.object(m, [...path, 'method'], ['type', 'service', 'method'])) {
      const type = this.string(m['type'], [...path, 'method', 'type'], { values: ['Exact', 'RegularExpression'] }) ?? 'Exact';
      const service = this.string(m['service'], [...path, 'method', 'service'], { max: 1024 });
      const method = this.string(m['method'], [...path, 'method', 'method'], { max: 1024 });
      if (service === undefined && method === undefined && m['service'] === undefined && m['method'] === undefined) {
        this.error([...path, 'method'], 'one or both of service and method must be specified', 'rule');
      }
      if (type === 'Exact') {
        if (service !== undefined && !GRPC_SERVICE_RE.test(service)) this.error([...path, 'method', 'service'], `expected a gRPC service name such as "helloworld.Greeter", found ${quoteText(service)}`);
        if (method !== undefined && !GRPC_METHOD.test(method)) this.error([...path, 'method', 'method'], `expected a gRPC method name such as "SayHello", found ${quoteText(method)}`);
      } else {
        if (service !== undefined) this.regex(service, [...path, 'method', 'service']);
        if (method !== undefined) this.regex(method, [...path, 'method', 'method']);
      }
    }
    this.keyedMatches(value['headers'], [...path, 'headers'], true);
  }

  pathValue(value: string, path: FieldPath): void {
    const bad = ['//', '/./', '/../', '%2f', '%2F', '#'].find((s) => value.includes(s));
    if (!value.startsWith('/')) this.error(path, `expected an absolute path starting with '/', found ${quoteText(value)}`);
    else if (bad) this.error(path, `must not contain '${bad}', found ${quoteText(value)}`);
    else if (value.endsWith('/..') || value.endsWith('/.')) this.error(path, `must not end with '/..' or '/.', found ${quoteText(value)}`);
    else if (!PATH_CHARS.test(value)) this.error(path, `must only contain valid path characters, found ${quoteText(value)}`);
  }

  regex(value: string, path: FieldPath): void {
    const problem = re2SyntaxError(value);
    if (problem) this.error(path, `expected an RE2 regular expression: ${problem}`, 'regex');
  }

  /** headers[] or queryParams[]: type, name, value; names unique. */
  keyedMatches(value: unknown, path: FieldPath, header: boolean): void {
    const seen = new Set<string>();
    this.list(value, path, 16).forEach((entry, i) => {
      const at = [...path, i];
      if (!this.object(entry, at, ['type', 'name', 'value'])) return;
      const type = this.string(entry['type'], [...at, 'type'], { values: ['Exact', 'RegularExpression'] }) ?? 'Exact';
      const name = this.string(entry['name'], [...at, 'name'], { required: true, max: 256, pattern: header ? HEADER_NAME : undefined, what: header ? 'an HTTP header name' : undefined });
      const v = this.string(entry['value'], [...at, 'value'], { required: true, max: 4096 });
      // Kubernetes keys the list by name, exactly; of names equal but for case, the first counts.
      if (name !== undefined) {
        if (seen.has(name)) this.error([...at, 'name'], `${quoteText(name)} is matched twice; names must be unique in the list`, 'duplicate');
        seen.add(name);
      }
      if (v !== undefined && type === 'RegularExpression') this.regex(v, [...at, 'value']);
    });
  }

  /** Returns the filter's type. */
  filter(value: unknown, path: FieldPath, matches: readonly unknown[]): string | undefined {
    const allowed = this.grpc ? GRPC_FILTERS : HTTP_FILTERS;
    if (!this.object(value, path, ['type', ...allowed.map((t) => FILTER_FIELD[t]!)])) return undefined;
    const type = this.string(value['type'], [...path, 'type'], { required: true, values: allowed });
    if (type === undefined) return undefined;
    const field = FILTER_FIELD[type]!;
    for (const other of allowed) {
      const f = FILTER_FIELD[other]!;
      if (other !== type && value[f] !== undefined) this.error([...path, f], `filter.${f} must be unset when the filter type is ${type}`, 'rule');
    }
    if (value[field] === undefined) {
      this.error([...path, field], `filter.${field} must be specified for a ${type} filter`, 'required');
      return type;
    }
    if (type === 'CORS') {
      this.warn([...path, field], CORS_NOT_APPLICABLE, 'not-applicable');
      return type;
    }
    const unsupported = UNSUPPORTED_FILTERS[type];
    if (unsupported) {
      this.error([...path, 'type'], `${unsupported}; rather than route without it, the route is refused`, 'not-supported');
      return type;
    }
    const at = [...path, field];
    if (type === 'RequestHeaderModifier' || type === 'ResponseHeaderModifier') this.headerModifier(value[field], at);
    else if (type === 'RequestMirror') this.mirror(value[field], at);
    else if (type === 'RequestRedirect') this.redirect(value[field], at, matches);
    else if (type === 'URLRewrite') this.rewrite(value[field], at, matches);
    return type;
  }

  headerModifier(value: unknown, path: FieldPath): void {
    if (!this.object(value, path, ['set', 'add', 'remove'])) return;
    for (const op of ['set', 'add'] as const) {
      const seen = new Set<string>();
      this.list(value[op], [...path, op], 16).forEach((entry, i) => {
        const at = [...path, op, i];
        if (!this.object(entry, at, ['name', 'value'])) return;
        const name = this.string(entry['name'], [...at, 'name'], { required: true, max: 256, pattern: HEADER_NAME, what: 'an HTTP header name' });
        this.string(entry['value'], [...at, 'value'], { max: 4096 });
        if (entry['value'] === undefined) this.error([...at, 'value'], "missing required field 'value'", 'required');
        if (name !== undefined) {
          if (seen.has(name.toLowerCase())) this.error([...at, 'name'], `header ${quoteText(name)} is listed twice in ${op}`, 'duplicate');
          seen.add(name.toLowerCase());
        }
      });
    }
    this.list(value['remove'], [...path, 'remove'], 16).forEach((n, i) => this.string(n, [...path, 'remove', i], { required: true, pattern: HEADER_NAME, what: 'an HTTP header name' }));
  }

  mirror(value: unknown, path: FieldPath): void {
    if (!this.object(value, path, ['backendRef', 'percent', 'fraction'])) return;
    if (value['backendRef'] === undefined) this.error([...path, 'backendRef'], "missing required field 'backendRef'", 'required');
    else this.backendRef(value['backendRef'], [...path, 'backendRef'], false);
    this.integer(value['percent'], [...path, 'percent'], 0, 100);
    if (value['percent'] !== undefined && value['fraction'] !== undefined) this.error(path, 'only one of percent or fraction may be specified', 'rule');
    const fraction = value['fraction'];
    if (fraction !== undefined && this.object(fraction, [...path, 'fraction'], ['numerator', 'denominator'])) {
      const n = this.integer(fraction['numerator'], [...path, 'fraction', 'numerator'], 0, 2 ** 31 - 1);
      const d = this.integer(fraction['denominator'], [...path, 'fraction', 'denominator'], 1, 2 ** 31 - 1) ?? 100;
      if (fraction['numerator'] === undefined) this.error([...path, 'fraction', 'numerator'], "missing required field 'numerator'", 'required');
      if (n !== undefined && n > d) this.error([...path, 'fraction'], `numerator must be less than or equal to denominator, found ${n}/${d}`, 'rule');
    }
  }

  redirect(value: unknown, path: FieldPath, matches: readonly unknown[]): void {
    if (!this.object(value, path, ['scheme', 'hostname', 'path', 'port', 'statusCode'])) return;
    this.string(value['scheme'], [...path, 'scheme'], { values: ['http', 'https'] });
    this.string(value['hostname'], [...path, 'hostname'], { pattern: PRECISE_HOSTNAME, max: 253, what: 'a hostname such as "shop.example.com"' });
    this.integer(value['port'], [...path, 'port'], 1, 65535);
    const code = value['statusCode'];
    if (code !== undefined && ![301, 302, 303, 307, 308].includes(code as number)) {
      this.error([...path, 'statusCode'], `expected one of 301, 302, 303, 307, 308, found ${describeTyped(code)}`, 'enum');
    }
    this.pathModifier(value['path'], [...path, 'path'], matches, 'RequestRedirect');
  }

  rewrite(value: unknown, path: FieldPath, matches: readonly unknown[]): void {
    if (!this.object(value, path, ['hostname', 'path'])) return;
    this.string(value['hostname'], [...path, 'hostname'], { pattern: PRECISE_HOSTNAME, max: 253, what: 'a hostname such as "shop.example.com"' });
    this.pathModifier(value['path'], [...path, 'path'], matches, 'URLRewrite');
  }

  pathModifier(value: unknown, path: FieldPath, matches: readonly unknown[], filter: string): void {
    if (value === undefined) return;
    if (!this.object(value, path, ['type', 'replaceFullPath', 'replacePrefixMatch'])) return;
    const type = this.string(value['type'], [...path, 'type'], { required: true, values: ['ReplaceFullPath', 'ReplacePrefixMatch'] });
    const full = this.string(value['replaceFullPath'], [...path, 'replaceFullPath'], { max: 1024 });
    const prefix = this.string(value['replacePrefixMatch'], [...path, 'replacePrefixMatch'], { max: 1024 });
    if (type === 'ReplaceFullPath' && value['replaceFullPath'] === undefined) this.error([...path, 'replaceFullPath'], "replaceFullPath must be specified when type is 'ReplaceFullPath'", 'required');
    if (type === 'ReplacePrefixMatch' && value['replacePrefixMatch'] === undefined) this.error([...path, 'replacePrefixMatch'], "replacePrefixMatch must be specified when type is 'ReplacePrefixMatch'", 'required');
    if (value['replaceFullPath'] !== undefined && type !== 'ReplaceFullPath') this.error([...path, 'replaceFullPath'], "type must be 'ReplaceFullPath' when replaceFullPath is set", 'rule');
    if (value['replacePrefixMatch'] !== undefined && type !== 'ReplacePrefixMatch') this.error([...path, 'replacePrefixMatch'], "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set", 'rule');
    for (const [v, field] of [[full, 'replaceFullPath'], [prefix, 'replacePrefixMatch']] as const) {
      if (v !== undefined && !v.startsWith('/')) this.error([...path, field], `expected an absolute path starting with '/', found ${quoteText(v)}`);
    }
    if (type === 'ReplacePrefixMatch') {
      const only = matches.length === 1 && isObject(matches[0]) ? matches[0]['path'] : undefined;
      const isPrefix = isObject(only) && (only['type'] === undefined || only['type'] === 'PathPrefix');
      if (!isPrefix) this.error([...path, 'replacePrefixMatch'], `when using the ${filter} filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified`, 'rule');
    }
  }

  backendRef(value: unknown, path: FieldPath, weighted: boolean): void {
    const fields = weighted ? ['group', 'kind', 'name', 'namespace', 'port', 'weight', 'filters'] : ['group', 'kind', 'name', 'namespace', 'port'];
    if (!this.object(value, path, fields)) return;
    const group = this.string(value['group'], [...path, 'group'], { max: 253 }) ?? '';
    const kind = this.string(value['kind'], [...path, 'kind'], { max: 63 }) ?? 'Service';
    this.string(value['name'], [...path, 'name'], { required: true, max: 253 });
    this.string(value['namespace'], [...path, 'namespace'], { pattern: DNS1123_LABEL, max: 63, what: 'a namespace name' });
    const port = this.integer(value['port'], [...path, 'port'], 1, 65535);
    if ((group === '' || group === 'core') && kind === 'Service') {
      if (port === undefined && value['port'] === undefined) this.error([...path, 'port'], 'must have port for Service reference', 'required');
    } else {
      this.error([...path, 'kind'], `expected a backend of kind Service (group ""), found kind ${quoteText(kind)} of group ${quoteText(group)}; sidecarless routes to Kubernetes Services only`, 'not-supported');
    }
    if (!weighted) return;
    this.integer(value['weight'], [...path, 'weight'], 0, 1_000_000);
    const filters = this.list(value['filters'], [...path, 'filters'], 16);
    filters.forEach((f, i) => {
      const at = [...path, 'filters', i];
      if (!isObject(f)) return void this.error(at, `expected an object, found ${describeTyped(f)}`, 'type');
      const type = f['type'];
      if (type === 'RequestHeaderModifier' || type === 'ResponseHeaderModifier') {
        this.object(f, at, ['type', FILTER_FIELD[type]!]);
        if (f[FILTER_FIELD[type]!] === undefined) this.error([...at, FILTER_FIELD[type]!], `filter.${FILTER_FIELD[type]!} must be specified for a ${type} filter`, 'required');
        else this.headerModifier(f[FILTER_FIELD[type]!], [...at, FILTER_FIELD[type]!]);
      } else {
        this.error([...at, 'type'], `a backendRef filter of type ${describeTyped(type)} is not supported (only RequestHeaderModifier and ResponseHeaderModifier are); rather than route without it, the route is refused`, 'not-supported');
      }
    });
  }

  retry(value: unknown, path: FieldPath): void {
    if (!this.object(value, path, ['attempts', 'backoff', 'codes'])) return;
    this.integer(value['attempts'], [...path, 'attempts'], 0, 2 ** 31 - 1);
    this.string(value['backoff'], [...path, 'backoff'], { pattern: GATEWAY_DURATION, what: 'a duration such as "100ms" or "1s" (units h, m, s, ms)' });
    this.list(value['codes'], [...path, 'codes'], 64).forEach((c, i) => this.integer(c, [...path, 'codes', i], 400, 599));
  }

  timeouts(value: unknown, path: FieldPath): void {
    if (!this.object(value, path, ['request', 'backendRequest'])) return;
    const ms: Record<string, number> = {};
    for (const field of ['request', 'backendRequest']) {
      const v = this.string(value[field], [...path, field], { pattern: GATEWAY_DURATION, what: 'a duration such as "10s", "500ms" or "1m30s" (units h, m, s, ms)' });
      if (v !== undefined) ms[field] = gatewayDurationMs(v);
    }
    if (ms['request'] !== undefined && ms['backendRequest'] !== undefined && ms['request'] !== 0 && ms['backendRequest'] > ms['request']) {
      this.error([...path, 'backendRequest'], 'backendRequest timeout cannot be longer than request timeout', 'rule');
    }
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

/** Checks an HTTPRoute or GRPCRoute spec the way the Gateway API CRDs (and their CEL rules) do. */
export function checkGatewayRoute(kind: 'HTTPRoute' | 'GRPCRoute', spec: unknown, report: RouteReport): void {
  new Checker(report, kind === 'GRPCRoute').spec(spec);
}

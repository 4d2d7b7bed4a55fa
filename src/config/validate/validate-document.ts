import type { FieldPath, RawDocument } from '../document.js';
import { formatPath } from '../document.js';
import type { ConfigIssue, IssueSeverity, ResourceRef, SourceLocation } from '../../issue.js';
import type { GatewayRouteKind, MeshResource, ResourceMetadata, SchemaKind } from '../resource.js';
import { GATEWAY_ROUTE_KINDS, SCHEMA_KINDS } from '../resource.js';
import { KIND_SCHEMAS } from '../schema/generated/schemas.js';
import { GATEWAY_ROUTE_SCHEMAS } from '../schema/generated/gateway-api-schemas.js';
import { readRateLimitPatches, readsEnvoyFilter } from '../compile/rate-limit/envoy-filter-patches.js';
import type { Report } from '../compile/rate-limit/proto-json.js';
import { checkRateLimitPolicy } from '../compile/rate-limit/rate-limit-policies.js';
import type { EnvoyFilterSpec } from '../schema/index.js';
import { UNREAD_ENVOY_FILTER, UNREAD_ISTIO_KINDS } from '../support.js';
import { describeTyped, describeValue, quoteText } from './describe.js';
import { didYouMean, suggestion } from './did-you-mean.js';
import type { WalkContext } from './schema-validator.js';
import { compileSchema } from './schema-validator.js';
import { SupportNode, supportTree } from './support-tree.js';
import { checkSemantics } from './semantic-checks.js';
import { checkGatewayRoute } from './gateway-api/route-checks.js';

export interface ValidateOptions {
  /** Namespace of a resource whose metadata has none (Kubernetes: the namespace it is applied to). */
  readonly defaultNamespace: string;
}

export interface ValidationResult {
  /** The resource, when the document is one sidecarless reads and has no errors. */
  readonly resource?: MeshResource;
  /** Every finding, errors and warnings, each with its path and location. */
  readonly issues: ConfigIssue[];
}

const TOP_LEVEL_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];
const RESOURCE_KIND_SET: ReadonlySet<string> = new Set(SCHEMA_KINDS);
const GATEWAY_ROUTE_KIND_SET: ReadonlySet<string> = new Set(GATEWAY_ROUTE_KINDS);
const ISTIO_KIND_NAMES = [...SCHEMA_KINDS, ...Object.keys(UNREAD_ISTIO_KINDS)];
const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** Gateway API fields sidecarless ignores are reported by route-checks.ts, not a support table. */
const GATEWAY_SUPPORT = new SupportNode({ status: 'supported' }, false);
/** Kubernetes object names: a DNS-1123 subdomain. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Namespaces: a DNS-1123 label. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIstioGroup(group: string): boolean {
  return group === 'istio.io' || group.endsWith('.istio.io') || group === 'sidecarless.io';
}

/**
 * Checks beyond the schema, for what it cannot say: the Envoy configuration inside an EnvoyFilter's
 * rate-limit patches, unique limit names in a RateLimitPolicy. Run once the schema walk passed.
 */
const SEMANTIC_CHECKS: Partial<Record<SchemaKind, (spec: unknown, report: Report) => void>> = {
  EnvoyFilter: (spec, report) => void readRateLimitPatches(spec as EnvoyFilterSpec, report),
  RateLimitPolicy: checkRateLimitPolicy,
};

/** Collects issues for one document, locating each through the document. */
class Reporter {
  readonly issues: ConfigIssue[] = [];
  ref: ResourceRef | undefined;
  readonly #doc: RawDocument;

  constructor(doc: RawDocument) {
    this.#doc = doc;
  }

  get hasErrors(): boolean {
    return this.issues.some((i) => i.severity === 'error');
  }

  add(severity: IssueSeverity, code: string, message: string, path?: FieldPath): void {
    this.issues.push({
      severity,
      code,
      message,
      ...(this.ref ? { resource: this.ref } : {}),
      ...(path && path.length > 0 ? { path: formatPath(path) } : {}),
      location: this.#locate(path ?? []),
    });
  }

  /** The location of the field, else of its nearest ancestor the source can place. */
  #locate(path: FieldPath): SourceLocation {
    const locate = this.#doc.locate;
    if (locate) {
      for (let n = path.length; n > 0; n--) {
        const found = locate.call(this.#doc, n === path.length ? path : path.slice(0, n));
        if (found) return found;
      }
    }
    return this.#doc.location;
  }
}

/**
 * Validates one document: the Kubernetes envelope (apiVersion served for the kind, metadata) and
 * the spec against the Istio CRD schema of that version, including its CEL rules, durations and
 * RE2 regexes; warns about every field used that sidecarless does not implement. Kinds sidecarless
 * does not read give a warning and no resource.
 */
export function validateDocument(doc: RawDocument, options: ValidateOptions): ValidationResult {
  const report = new Reporter(doc);
  const value = doc.value;
  if (!isObject(value)) {
    report.add('error', 'type', `expected a Kubernetes resource (an object with apiVersion, kind, metadata and spec), found ${describeTyped(value)}`);
    return { issues: report.issues };
  }
  const kind = value['kind'];
  const apiVersion = value['apiVersion'];
  report.ref = provisionalRef(value, options.defaultNamespace);
  if (kind === undefined || kind === null) {
    report.add('error', 'required', "missing required field 'kind'", ['kind']);
    return { issues: report.issues };
  }
  if (typeof kind !== 'string') {
    report.add('error', 'type', `expected a string, found ${describeTyped(kind)}`, ['kind']);
    return { issues: report.issues };
  }
  if (apiVersion === undefined || apiVersion === null) {
    report.add('error', 'required', "missing required field 'apiVersion'", ['apiVersion']);
    return { issues: report.issues };
  }
  if (typeof apiVersion !== 'string') {
    report.add('error', 'type', `expected a string such as "networking.istio.io/v1", found ${describeTyped(apiVersion)}`, ['apiVersion']);
    return { issues: report.issues };
  }
  const slash = apiVersion.lastIndexOf('/');
  const group = slash === -1 ? '' : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);

  if (GATEWAY_ROUTE_KIND_SET.has(kind) && group === GATEWAY_API_GROUP) {
    return validateGatewayRoute(doc, value, kind as GatewayRouteKind, apiVersion, version, options, report);
  }
  if (!RESOURCE_KIND_SET.has(kind)) {
    reportOtherKind(report, kind, apiVersion, group);
    return { issues: report.issues };
  }
  const resourceKind = kind as SchemaKind;
  const schemas = KIND_SCHEMAS[resourceKind];
  if (resourceKind === 'EnvoyFilter' && (group === schemas.group || !group.includes('.')) && !readsEnvoyFilter(value['spec'])) {
    // Most EnvoyFilters patch Envoy in ways that mean nothing here: reported, never an error.
    report.add('warning', 'not-applicable', `EnvoyFilter does not apply to an in-process mesh and is ignored: ${UNREAD_ENVOY_FILTER}`, ['kind']);
    return { issues: report.issues };
  }
  if (group !== schemas.group && group.includes('.') && !isIstioGroup(group)) {
    // Another API's kind of the same name (e.g. AWS App Mesh's VirtualService).
    report.add('warning', 'ignored', `${kind} of ${apiVersion} is not an Istio resource; ignored`, ['apiVersion']);
    return { issues: report.issues };
  }
  const spec = group === schemas.group ? schemas.versions[version] : undefined;
  if (!spec) {
    const served = Object.keys(schemas.versions).map((v) => `${schemas.group}/${v}`);
    report.add('error', 'api-version', `${kind} is served as ${served.join(', ')}; found apiVersion ${quoteText(apiVersion)}`, ['apiVersion']);
    return { issues: report.issues };
  }

  for (const key of Object.keys(value)) {
    if (!TOP_LEVEL_FIELDS.includes(key)) {
      report.add('error', 'unknown-field', `unknown field '${key}'${suggestion(key, TOP_LEVEL_FIELDS)}`, [key]);
    }
  }
  const metadata = validateMetadata(value['metadata'], options.defaultNamespace, report);
  if (metadata) report.ref = { kind, namespace: metadata.namespace, name: metadata.name };

  let specValue = value['spec'];
  if (specValue === undefined || specValue === null) {
    report.add('error', 'required', "missing required field 'spec'", ['spec']);
  } else {
    const compiled = compileSchema(spec, `${kind} ${version} spec`);
    const path: (string | number)[] = ['spec'];
    const ctx: WalkContext = {
      path,
      prunedNull: false,
      error: (code, message, field) => report.add('error', code, message, field === undefined ? path : [...path, field]),
      warning: (code, message, field) => report.add('warning', code, message, field === undefined ? path : [...path, field]),
    };
    const support = supportTree(resourceKind).child('spec');
    if (support.warn) {
      const reason = support.support.reason ? `: ${support.support.reason}` : '';
      report.add(
        'warning',
        support.support.status === 'not-yet' ? 'not-implemented' : 'not-applicable',
        `${kind} is not implemented yet and has no effect${reason}`,
        ['spec'],
      );
    }
    compiled.validate(specValue, ctx, support);
    if (ctx.prunedNull) specValue = compiled.prune(specValue);
    if (metadata && !report.hasErrors) {
      checkSemantics(resourceKind, specValue, metadata, {
        error: (field, message, code = 'invalid-value') => report.add('error', code, message, field),
        warn: (field, message, code = 'istio-warning') => report.add('warning', code, message, field),
      });
    }
    const check = SEMANTIC_CHECKS[resourceKind];
    if (check && !report.hasErrors) check(specValue, (severity, code, message, field) => report.add(severity, code, message, field));
  }

  if (report.hasErrors || !metadata) return { issues: report.issues };
  const resource: MeshResource = { apiVersion, kind: resourceKind, metadata, spec: specValue, document: doc };
  return { resource, issues: report.issues };
}

/**
 * An HTTPRoute or GRPCRoute: the envelope as for every kind, the spec against the Gateway API CRD
 * schema of that version (with its CEL rules), then what the schema cannot say (route-checks.ts).
 */
function validateGatewayRoute(
  doc: RawDocument,
  value: Obj,
  kind: GatewayRouteKind,
  apiVersion: string,
  version: string,
  options: ValidateOptions,
  report: Reporter,
): ValidationResult {
  const schemas = GATEWAY_ROUTE_SCHEMAS[kind];
  const schema = schemas.versions[version];
  if (!schema) {
    const list = Object.keys(schemas.versions)
      .map((v) => `${GATEWAY_API_GROUP}/${v}`)
      .join(', ');
    report.add('error', 'api-version', `${kind} is served as ${list}; found apiVersion ${quoteText(apiVersion)}`, ['apiVersion']);
    return { issues: report.issues };
  }
  for (const key of Object.keys(value)) {
    if (!TOP_LEVEL_FIELDS.includes(key)) report.add('error', 'unknown-field', `unknown field '${key}'${suggestion(key, TOP_LEVEL_FIELDS)}`, [key]);
  }
  const metadata = validateMetadata(value['metadata'], options.defaultNamespace, report);
  if (metadata) report.ref = { kind, namespace: metadata.namespace, name: metadata.name };
  let spec = value['spec'];
  if (spec === undefined || spec === null) report.add('error', 'required', "missing required field 'spec'", ['spec']);
  else {
    const compiled = compileSchema(schema, `${kind} ${version} spec`);
    const path: (string | number)[] = ['spec'];
    const ctx: WalkContext = {
      path,
      prunedNull: false,
      error: (code, message, field) => report.add('error', code, message, field === undefined ? path : [...path, field]),
      warning: (code, message, field) => report.add('warning', code, message, field === undefined ? path : [...path, field]),
    };
    compiled.validate(spec, ctx, GATEWAY_SUPPORT);
    if (ctx.prunedNull) spec = compiled.prune(spec);
    checkGatewayRoute(compiled.withDefaults(spec), (severity, code, message, at) => report.add(severity, code, message, at));
  }
  if (report.hasErrors || !metadata) return { issues: report.issues };
  return { resource: { apiVersion, kind, metadata, spec, document: doc }, issues: report.issues };
}

function provisionalRef(value: Obj, defaultNamespace: string): ResourceRef {
  const metadata = isObject(value['metadata']) ? value['metadata'] : {};
  const name = typeof metadata['name'] === 'string' ? metadata['name'] : '(unnamed)';
  const namespace = typeof metadata['namespace'] === 'string' && metadata['namespace'] !== '' ? metadata['namespace'] : defaultNamespace;
  return { kind: typeof value['kind'] === 'string' ? value['kind'] : '(no kind)', namespace, name };
}

function reportOtherKind(report: Reporter, kind: string, apiVersion: string, group: string): void {
  const unread = UNREAD_ISTIO_KINDS[kind];
  if (unread && (group === unread.group || !group.includes('.'))) {
    const status = unread.status === 'not-yet' ? 'not-implemented' : 'not-applicable';
    const what = unread.status === 'not-yet' ? 'is not implemented yet and is ignored' : 'does not apply to an in-process mesh and is ignored';
    report.add('warning', status, `${kind} ${what}: ${unread.reason}`, ['kind']);
    return;
  }
  if (isIstioGroup(group)) {
    const match = didYouMean(kind, ISTIO_KIND_NAMES);
    const expected = match ? `did you mean '${match}'?` : `expected one of ${ISTIO_KIND_NAMES.join(', ')}`;
    report.add('error', 'unknown-kind', `unknown Istio kind ${quoteText(kind)} in ${apiVersion}; ${expected}`, ['kind']);
    return;
  }
  report.add('warning', 'ignored', `${kind} (${apiVersion}) is not an Istio resource; ignored`, ['kind']);
}

function validateMetadata(value: unknown, defaultNamespace: string, report: Reporter): ResourceMetadata | undefined {
  if (value === undefined || value === null) {
    report.add('error', 'required', "missing required field 'metadata'", ['metadata']);
    return undefined;
  }
  if (!isObject(value)) {
    report.add('error', 'type', `expected an object, found ${describeTyped(value)}`, ['metadata']);
    return undefined;
  }
  let ok = true;
  const name = value['name'];
  if (name === undefined || name === null || name === '') {
    report.add('error', 'required', "missing required field 'name'", ['metadata', 'name']);
    ok = false;
  } else if (typeof name !== 'string') {
    report.add('error', 'type', `expected a string, found ${describeTyped(name)}`, ['metadata', 'name']);
    ok = false;
  } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    report.add(
      'error',
      'invalid-name',
      `expected a name of at most 253 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, found ${quoteText(name)}`,
      ['metadata', 'name'],
    );
    ok = false;
  }
  let namespace = defaultNamespace;
  const ns = value['namespace'];
  if (ns !== undefined && ns !== null && ns !== '') {
    if (typeof ns !== 'string') {
      report.add('error', 'type', `expected a string, found ${describeTyped(ns)}`, ['metadata', 'namespace']);
      ok = false;
    } else if (ns.length > 63 || !DNS1123_LABEL.test(ns)) {
      report.add(
        'error',
        'invalid-name',
        `expected a namespace of at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, found ${quoteText(ns)}`,
        ['metadata', 'namespace'],
      );
      ok = false;
    } else {
      namespace = ns;
    }
  }
  const labels = stringMap(value['labels'], 'labels', report);
  const annotations = stringMap(value['annotations'], 'annotations', report);
  const creationTimestamp = timestamp(value['creationTimestamp'], report);
  const resourceVersion = optionalString(value['resourceVersion'], 'resourceVersion', report);
  const generation = value['generation'];
  if (generation !== undefined && generation !== null && (typeof generation !== 'number' || !Number.isInteger(generation))) {
    report.add('error', 'type', `expected an integer, found ${describeTyped(generation)}`, ['metadata', 'generation']);
    ok = false;
  }
  if (!ok || labels === false || annotations === false || creationTimestamp === false || resourceVersion === false) return undefined;
  return {
    name: name as string,
    namespace,
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
    ...(creationTimestamp ? { creationTimestamp } : {}),
    ...(resourceVersion ? { resourceVersion } : {}),
    ...(typeof generation === 'number' ? { generation } : {}),
  };
}

/** A string map, undefined when absent, false when invalid (reported). */
function stringMap(value: unknown, field: string, report: Reporter): Record<string, string> | undefined | false {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    report.add('error', 'type', `expected a map of strings, found ${describeTyped(value)}`, ['metadata', field]);
    return false;
  }
  let ok = true;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      // YAML reads `version: 1` or `canary: true` as a number or boolean; Kubernetes rejects both.
      const hint = typeof v === 'number' || typeof v === 'boolean' ? ` (quote it: "${String(v)}")` : '';
      report.add('error', 'type', `expected a string, found ${describeTyped(v)}${hint}`, ['metadata', field, key]);
      ok = false;
    }
  }
  return ok ? (value as Record<string, string>) : false;
}

function optionalString(value: unknown, field: string, report: Reporter): string | undefined | false {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  report.add('error', 'type', `expected a string, found ${describeTyped(value)}`, ['metadata', field]);
  return false;
}

function timestamp(value: unknown, report: Reporter): string | undefined | false {
  // A YAML 1.1 reader may have turned the RFC 3339 text into a Date already.
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  if (value === undefined || value === null || typeof value === 'string') return value ?? undefined;
  report.add('error', 'type', `expected an RFC 3339 timestamp, found ${describeValue(value)}`, ['metadata', 'creationTimestamp']);
  return false;
}

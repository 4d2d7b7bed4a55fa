import type { FieldPath } from '../../document.js';
import type { EnvoyFilterSpec } from '../../schema/index.js';
import type { LocalRateLimitConfig } from './local-rate-limit-config.js';
import { isLocalRateLimitAny, readLocalRateLimit } from './local-rate-limit-config.js';
import type { Report } from './proto-json.js';
import { isObject } from './proto-json.js';

/** Envoy's HTTP connection manager: the network filter that holds HTTP filters. */
const HCM = 'envoy.filters.network.http_connection_manager';
const INSERTS = new Set(['INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'ADD']);

export type PatchContext = 'outbound' | 'inbound' | 'both';

/** Route-configuration conditions of a route or virtual host patch. */
export interface RouteConfigMatch {
  /** `routeConfiguration.portNumber`, or a numeric `routeConfiguration.name` (Istio names outbound route configurations by port). */
  readonly port: number | undefined;
  /** `vhost.name`: `host:port` as Istio names virtual hosts. */
  readonly vhost: string | undefined;
  /** `vhost.route.name`. */
  readonly route: string | undefined;
}

/** A configPatch sidecarless applies: a local rate-limit filter, or its per-route/vhost configuration. */
export type RateLimitPatch =
  | {
      readonly kind: 'filter';
      readonly index: number;
      readonly context: PatchContext;
      /** The HTTP filter's name: per-route configurations are keyed by it. */
      readonly filterName: string;
      /** `listener.portNumber`: only the listener of that port gets the filter. */
      readonly port: number | undefined;
      readonly config: LocalRateLimitConfig;
    }
  | {
      readonly kind: 'route' | 'vhost';
      readonly index: number;
      readonly context: PatchContext;
      readonly filterName: string;
      readonly match: RouteConfigMatch;
      readonly config: LocalRateLimitConfig;
    };

type Obj = Readonly<Record<string, unknown>>;

/** `typed_config` or `typedConfig` (protobuf JSON takes either spelling). */
function field(value: Obj, snake: string, camel: string): unknown {
  return value[snake] ?? value[camel];
}

function perFilterConfigs(value: Obj): Obj | undefined {
  const configs = field(value, 'typed_per_filter_config', 'typedPerFilterConfig');
  return isObject(configs) ? configs : undefined;
}

/** Whether a patch value carries Envoy's HTTP local rate-limit configuration anywhere sidecarless looks. */
function carriesLocalRateLimit(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (isLocalRateLimitAny(field(value, 'typed_config', 'typedConfig'))) return true;
  const configs = perFilterConfigs(value);
  return configs !== undefined && Object.values(configs).some(isLocalRateLimitAny);
}

/**
 * Whether an EnvoyFilter's spec (not yet validated) has a patch sidecarless reads: one that
 * configures Envoy's HTTP local rate limit (by type URL). Other EnvoyFilters are not read at all.
 */
export function readsEnvoyFilter(spec: unknown): boolean {
  if (!isObject(spec) || !Array.isArray(spec['configPatches'])) return false;
  return spec['configPatches'].some((p: unknown) => isObject(p) && isObject(p['patch']) && carriesLocalRateLimit(p['patch']['value']));
}

function contextOf(context: string | undefined): PatchContext | undefined {
  switch (context ?? 'ANY') {
    case 'ANY':
      return 'both';
    case 'SIDECAR_OUTBOUND':
      return 'outbound';
    case 'SIDECAR_INBOUND':
      return 'inbound';
    default:
      return undefined;
  }
}

/**
 * The rate-limit patches of a validated EnvoyFilter spec, in order. Every patch not applied gets a
 * `not-applicable` warning naming it, and a bad LocalRateLimit inside one it applies an error.
 */
export function readRateLimitPatches(spec: EnvoyFilterSpec, report: Report): RateLimitPatch[] {
  const out: RateLimitPatch[] = [];
  (spec.configPatches ?? []).forEach((patch, index) => {
    const path: FieldPath = ['spec', 'configPatches', index];
    const skip = (why: string): void => report('warning', 'not-applicable', `patch not applied: ${why}`, path);
    const value = patch.patch?.value;
    if (!carriesLocalRateLimit(value) || !isObject(value)) {
      skip(
        "sidecarless applies only patches that configure Envoy's HTTP local rate limit (envoy.filters.http.local_ratelimit); there is no Envoy here to patch",
      );
      return;
    }
    const context = contextOf(patch.match?.context);
    if (!context) {
      skip(
        `context ${patch.match?.context ?? ''} configures gateways or waypoints; sidecarless stands in for a sidecar (SIDECAR_OUTBOUND, and SIDECAR_INBOUND for servers)`,
      );
      return;
    }
    const operation = patch.patch?.operation ?? 'INVALID';
    const valuePath: FieldPath = [...path, 'patch', 'value'];
    if (patch.applyTo === 'HTTP_FILTER') {
      if (!INSERTS.has(operation)) {
        skip(
          `operation ${operation} on an HTTP filter: only inserting the local rate-limit filter (INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST, ADD) is applied`,
        );
        return;
      }
      const networkFilter = patch.match?.listener?.filterChain?.filter?.name;
      if (networkFilter !== undefined && networkFilter !== HCM) {
        skip(`HTTP filters live in ${HCM}, not in ${networkFilter}`);
        return;
      }
      const typed = field(value, 'typed_config', 'typedConfig');
      const typedKey = value['typed_config'] !== undefined ? 'typed_config' : 'typedConfig';
      const config = readLocalRateLimit(typed, [...valuePath, typedKey], report, false);
      const name = typeof value['name'] === 'string' && value['name'] !== '' ? value['name'] : 'envoy.filters.http.local_ratelimit';
      if (config) out.push({ kind: 'filter', index, context, filterName: name, port: patch.match?.listener?.portNumber, config });
      return;
    }
    if (patch.applyTo === 'HTTP_ROUTE' || patch.applyTo === 'VIRTUAL_HOST') {
      if (operation !== 'MERGE') {
        skip(`operation ${operation} on ${patch.applyTo}: only MERGE of typed_per_filter_config is applied`);
        return;
      }
      const rc = patch.match?.routeConfiguration;
      if (rc?.gateway !== undefined || rc?.portName !== undefined) {
        skip('routeConfiguration.gateway and portName select gateway route configurations');
        return;
      }
      const numericName = rc?.name !== undefined && /^\d+$/.test(rc.name) ? Number(rc.name) : undefined;
      if (rc?.name !== undefined && numericName === undefined) {
        skip(`routeConfiguration.name "${rc.name}": outbound route configurations are named by port number, such as "9080"`);
        return;
      }
      if (rc?.portNumber !== undefined && numericName !== undefined && rc.portNumber !== numericName) {
        skip(`routeConfiguration.name "${rc.name}" and portNumber ${rc.portNumber} can never both match`);
        return;
      }
      const match: RouteConfigMatch = {
        port: rc?.portNumber ?? numericName,
        vhost: rc?.vhost?.name,
        route: patch.applyTo === 'HTTP_ROUTE' ? rc?.vhost?.route?.name : undefined,
      };
      const action = rc?.vhost?.route?.action;
      if (patch.applyTo === 'HTTP_ROUTE' && (action === 'REDIRECT' || action === 'DIRECT_RESPONSE')) {
        skip(`routes with action ${action} are answered by the mesh before any rate limit applies`);
        return;
      }
      const ignored = Object.keys(value).filter((k) => k !== 'typed_per_filter_config' && k !== 'typedPerFilterConfig');
      for (const key of ignored) {
        report(
          'warning',
          'not-applicable',
          `'${key}' is not applied: of a route or virtual host patch, sidecarless applies only the local rate-limit entry of typed_per_filter_config`,
          [...valuePath, key],
        );
      }
      const configsKey = value['typed_per_filter_config'] !== undefined ? 'typed_per_filter_config' : 'typedPerFilterConfig';
      for (const [filterName, any] of Object.entries(perFilterConfigs(value) ?? {})) {
        const at: FieldPath = [...valuePath, configsKey, filterName];
        if (!isLocalRateLimitAny(any)) {
          report('warning', 'not-applicable', `the configuration of filter '${filterName}' is not applied: only Envoy's HTTP local rate limit is`, at);
          continue;
        }
        const config = readLocalRateLimit(any, at, report, true);
        if (config) out.push({ kind: patch.applyTo === 'HTTP_ROUTE' ? 'route' : 'vhost', index, context, filterName, match, config });
      }
      return;
    }
    skip(
      `applyTo ${patch.applyTo ?? 'INVALID'}: a local rate limit is applied from HTTP_FILTER (the filter) and HTTP_ROUTE or VIRTUAL_HOST (its per-route configuration)`,
    );
  });
  return out;
}

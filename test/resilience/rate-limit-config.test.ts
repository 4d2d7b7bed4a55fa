import { describe, expect, it } from 'vitest';
import { formatIssue, MeshConfigError } from '../../src/index.js';
import { errors, validateYaml, warnings } from '../config/helpers.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const policy = (limit: string, top = '') => `
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews-limits, namespace: shop }
spec:
  host: reviews${top}
  limits:
${limit}
`;

/** `error path: message` of every error. */
function errorLines(text: string): string[] {
  return errors(validateYaml(text)).map((i) => `${i.path ?? ''}: ${i.message}`);
}

describe('RateLimitPolicy validation (against deploy/crds/ratelimitpolicies.sidecarless.io.yaml)', () => {
  it('accepts a complete policy without findings', () => {
    const result = validateYaml(
      policy(`  - name: per-user
    match: { routes: [checkout], subsets: [v2], ports: [9080], methods: [POST], headers: { x-tenant: { exact: gold } } }
    key: { header: x-user, maxKeys: 500 }
    tokenBucket: { maxTokens: 10, tokensPerFill: 5, fillInterval: 500ms }
    scope: SHARED`),
    );
    expect(result.issues).toEqual([]);
    expect(result.resource?.kind).toBe('RateLimitPolicy');
  });

  it('names the resource, the field path and what was expected', () => {
    expect(errorLines(policy('  - tokenBucket: { maxTokens: -1, fillInterval: 1s }'))).toEqual([
      'spec.limits[0].tokenBucket.maxTokens: expected an integer from 1 to 4294967295, found -1',
    ]);
    expect(errorLines(policy('  - tokenBucket: { maxTokens: 5, fillInterval: 1 minute }'))).toEqual([
      'spec.limits[0].tokenBucket.fillInterval: expected a duration such as "1.5s", "100ms" or "1h30m" (units h, m, s, ms, us, ns), found "1 minute"',
    ]);
    expect(errorLines(policy('  - tokenBucket: { maxTokens: 5, fillInterval: 1s, burst: 3 }'))).toEqual([
      "spec.limits[0].tokenBucket.burst: unknown field 'burst'; expected one of fillInterval, maxTokens, tokensPerFill",
    ]);
    expect(errorLines(policy('  - tokenBucket: { maxTokens: 5, fillInterval: 1s }\n    scope: GLOBAL'))).toEqual([
      'spec.limits[0].scope: expected one of LOCAL, SHARED, found "GLOBAL"; did you mean \'LOCAL\'?',
    ]);
    expect(errorLines(policy('  - tokenBucket: { maxTokens: 5, fillInterval: 1s }\n    key: { header: x-user, queryParameter: user }'))).toEqual([
      "spec.limits[0].key: exactly one of header or queryParameter must be set (found both 'header' and 'queryParameter')",
    ]);
    expect(errorLines(policy('  - tokenBucket: { maxTokens: 5, fillInterval: 1s }\n    key: { header: X-User }'))).toEqual([
      'spec.limits[0].key.header: expected a value matching ^[a-z0-9!#$%&\'*+.^_`|~-]+$, found "X-User"',
    ]);
    expect(errorLines(policy('  - match: { routes: [a] }'))).toEqual(["spec.limits[0].tokenBucket: missing required field 'tokenBucket'"]);
    expect(errorLines(policy('  - tokenBucket: { maxTokens: 5, fillInterval: 0s }'))).toEqual([
      'spec.limits[0].tokenBucket.fillInterval: must be a valid duration greater than 1ms (found "0s")',
    ]);
  });

  it('refuses two limits with one name', () => {
    const text = policy('  - name: a\n    tokenBucket: { maxTokens: 1, fillInterval: 1s }\n  - name: a\n    tokenBucket: { maxTokens: 2, fillInterval: 1s }');
    expect(errorLines(text)).toEqual(['spec.limits[1].name: limit name "a" is used twice; names must be unique within a policy']);
  });

  it('knows its own apiVersion and suggests the kind', () => {
    const wrong = validateYaml(policy('  - tokenBucket: { maxTokens: 1, fillInterval: 1s }').replace('v1alpha1', 'v1'));
    expect(errors(wrong).map((i) => i.message)).toEqual(['RateLimitPolicy is served as sidecarless.io/v1alpha1; found apiVersion "sidecarless.io/v1"']);
    const typo = validateYaml(policy('  - tokenBucket: { maxTokens: 1, fillInterval: 1s }').replace('kind: RateLimitPolicy', 'kind: RateLimitPolcy'));
    expect(errors(typo).map((i) => i.message)).toEqual([`unknown Istio kind "RateLimitPolcy" in sidecarless.io/v1alpha1; did you mean 'RateLimitPolicy'?`]);
  });

  it('rejects the whole change at createMesh with a MeshConfigError naming the resource', async () => {
    const error = await meshFromYaml(policy('  - tokenBucket: { maxTokens: 0, fillInterval: 1s }')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MeshConfigError);
    expect((error as MeshConfigError).issues.filter((i) => i.severity === 'error').map(formatIssue)).toEqual([
      'error: inline[0]: RateLimitPolicy shop/reviews-limits: spec.limits[0].tokenBucket.maxTokens: expected an integer from 1 to 4294967295, found 0',
    ]);
  });
});

const filter = (typed: string, applyTo = 'HTTP_FILTER', operation = 'INSERT_BEFORE') => `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: ratelimit, namespace: shop }
spec:
  configPatches:
  - applyTo: ${applyTo}
    match: { context: SIDECAR_OUTBOUND }
    patch:
      operation: ${operation}
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
${typed
  .trim()
  .split('\n')
  .map((l) => `          ${l}`)
  .join('\n')}
`;

describe('EnvoyFilter local rate-limit validation', () => {
  const ok = 'stat_prefix: rl\ntoken_bucket: { max_tokens: 5, fill_interval: 1s }';

  it('checks the LocalRateLimit inside the patch, as Envoy would', () => {
    expect(errorLines(filter('token_bucket: { max_tokens: 5, fill_interval: 1s }'))).toEqual([
      "spec.configPatches[0].patch.value.typed_config.stat_prefix: missing required field 'stat_prefix'",
    ]);
    expect(errorLines(filter('stat_prefix: rl\ntoken_bucket: { max_tokens: 5, fill_interval: 1m }'))).toEqual([
      'spec.configPatches[0].patch.value.typed_config.token_bucket.fill_interval: expected a protobuf duration in seconds such as "1s", "0.25s" or "60s", found a string "1m"',
    ]);
    expect(errorLines(filter('stat_prefix: rl\ntoken_bucket: { max_tokens: 5, fill_interval: 0.01s }'))).toEqual([
      'spec.configPatches[0].patch.value.typed_config.token_bucket.fill_interval: expected at least 0.05s: Envoy\'s local rate limit refuses a fill interval under 50 ms, found "0.01s"',
    ]);
    expect(errorLines(filter('stat_prefix: rl\ntoken_bucket: { max_tokens: 0, fill_interval: 1s }'))).toEqual([
      'spec.configPatches[0].patch.value.typed_config.token_bucket.max_tokens: expected an integer from 1 to 4294967295, found 0',
    ]);
    expect(errorLines(filter('stat_prefix: rl\ntoken_bucket: { max_tokens: 5, fill_interval: 1s, max_token: 2 }'))).toEqual([
      "spec.configPatches[0].patch.value.typed_config.token_bucket.max_token: unknown field 'max_token'; did you mean 'max_tokens'?",
    ]);
    expect(errorLines(filter(`${ok}\nfilter_enabled: { default_value: { numerator: 100, denominator: PERCENT } }`))).toEqual([
      'spec.configPatches[0].patch.value.typed_config.filter_enabled.default_value.denominator: expected one of HUNDRED, TEN_THOUSAND, MILLION, found a string "PERCENT"',
    ]);
  });

  it('warns about LocalRateLimit fields that have no effect here', () => {
    const result = validateYaml(
      filter(
        `${ok}\nlocal_rate_limit_per_downstream_connection: true\ndescriptors: [{ entries: [{ key: a, value: b }], token_bucket: { max_tokens: 1, fill_interval: 1s } }]`,
      ),
    );
    expect(errors(result)).toEqual([]);
    expect(warnings(result).map((i) => `${i.code} ${i.path}`)).toEqual([
      'not-implemented spec.configPatches[0].patch.value.typed_config.descriptors',
      'not-applicable spec.configPatches[0].patch.value.typed_config.local_rate_limit_per_downstream_connection',
    ]);
  });

  it('refuses a per-route configuration without a token bucket, as Envoy does', () => {
    const text = `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: route, namespace: shop }
spec:
  configPatches:
  - applyTo: HTTP_ROUTE
    match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { route: { name: checkout } } } }
    patch:
      operation: MERGE
      value:
        typed_per_filter_config:
          envoy.filters.http.local_ratelimit:
            "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            stat_prefix: route
`;
    expect(errorLines(text)).toEqual([
      "spec.configPatches[0].patch.value.typed_per_filter_config.envoy.filters.http.local_ratelimit: missing required field 'token_bucket': Envoy refuses a route or virtual host configuration without one",
    ]);
  });

  it('reports a rate-limit patch it cannot apply as a warning', () => {
    const result = validateYaml(filter(ok, 'HTTP_FILTER', 'REMOVE'));
    expect(errors(result)).toEqual([]);
    expect(warnings(result).map((i) => `${i.path}: ${i.message}`)).toEqual([
      'spec.configPatches[0]: patch not applied: operation REMOVE on an HTTP filter: only inserting the local rate-limit filter (INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST, ADD) is applied',
    ]);
  });

  it('keeps other EnvoyFilters a warning, even malformed ones', () => {
    const result = validateYaml(
      'apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: lua}\nspec:\n  configPatches: [{ applyTo: NOPE, bogus: 1 }]\n',
    );
    expect(result.resource).toBeUndefined();
    expect(result.issues.map((i) => [i.severity, i.code])).toEqual([['warning', 'not-applicable']]);
  });
});

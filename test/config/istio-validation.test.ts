import { describe, expect, it } from 'vitest';
import { validateYaml } from './helpers.js';

/**
 * Istio's semantic validation (istiod's validating webhook, `pkg/config/validation`), case by case:
 * documents the CRD schema admits and Istio refuses (or warns about), and their neighbours Istio
 * accepts. The hand-written documents come first, then cases from Istio's own validation tests.
 * Each expected issue is `path: start of the message`, in Istio's words.
 */
interface Case {
  readonly name: string;
  readonly yaml: string;
  /** Every error, in order; none means valid. */
  readonly errors?: readonly string[];
  /** Warnings that must be among the warnings. */
  readonly warnings?: readonly string[];
}

const head = (kind: string, name: string, group = 'networking.istio.io') => `apiVersion: ${group}/v1
kind: ${kind}
metadata: {name: ${name}, namespace: shop}
`;

/** A VirtualService for `reviews` whose `spec` continues with `body` (indented two spaces). */
const vs = (name: string, body: string) => `${head('VirtualService', name)}spec:
  hosts: [reviews]
${body}`;

/** A VirtualService for `reviews` with one http route: `route` is the entry's fields, indented four spaces. */
const http = (name: string, route: string) =>
  vs(
    name,
    `  http:
  - ${route.trimStart()}`,
  );

const TO_REVIEWS = 'route: [{destination: {host: reviews}}]';
const dr = (name: string, body: string) => `${head('DestinationRule', name)}spec:
  host: reviews
${body}`;
const se = (name: string, body: string) => `${head('ServiceEntry', name)}spec:
${body}`;
const we = (name: string, body: string) => `${head('WorkloadEntry', name)}spec:
${body}`;
const sidecar = (name: string, body: string) => `${head('Sidecar', name)}spec:
${body}`;
const pa = (name: string, body: string) => `${head('PeerAuthentication', name, 'security.istio.io')}spec:
${body}`;
/** An EnvoyFilter with a local rate-limit patch (so sidecarless reads it), then `patches`. */
const envoyFilter = (patches: string, selector = '') => `${head('EnvoyFilter', 'limits', 'networking.istio.io').replace('/v1', '/v1alpha3')}spec:
${selector}  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: SIDECAR_OUTBOUND, listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          stat_prefix: limits
          token_bucket: {max_tokens: 10, tokens_per_fill: 10, fill_interval: 1s}
${patches}`;
const ap = (name: string, body: string, annotations = '') => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: shop${annotations}}
spec:
${body}`;

function check(c: Case): void {
  const result = validateYaml(c.yaml);
  const shown = (severity: string) => result.issues.filter((i) => i.severity === severity).map((i) => `${i.path ?? ''}: ${i.message}`);
  const errors = shown('error');
  const expected = c.errors ?? [];
  expect(errors.length, `errors:\n${errors.join('\n')}`).toBe(expected.length);
  expected.forEach((want, i) => expect(errors[i]).toContain(want));
  for (const want of c.warnings ?? [])
    expect(
      shown('warning').some((w) => w.includes(want)),
      `no warning "${want}" in:\n${shown('warning').join('\n')}`,
    ).toBe(true);
  if (expected.length === 0) expect(result.resource).toBeDefined();
  else expect(result.resource).toBeUndefined();
}

const handWritten: Case[] = [
  // The documents that passed before Istio's rules were enforced.
  {
    name: 'fault percentage over 100',
    yaml: http('fault-150', `fault: {abort: {httpStatus: 503, percentage: {value: 150}}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.abort.percentage.value: percentage 150 is neither 0.0, nor in range [0.0001, 100.0]'],
  },
  {
    name: 'route together with redirect',
    yaml: http('route-redirect', `redirect: {uri: /v2}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0]: HTTP route cannot contain both route and redirect'],
  },
  {
    name: 'a negative weight',
    yaml: http('negative-weight', 'route: [{destination: {host: reviews}, weight: -10}, {destination: {host: ratings}, weight: 110}]'),
    errors: ['spec.http[0].route[0].weight: weight -10 < 0'],
  },
  {
    name: 'negative retry attempts',
    yaml: http('negative-attempts', `retries: {attempts: -1}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].retries.attempts: attempts cannot be negative'],
  },
  {
    name: 'destination port 0',
    yaml: http('port-0', 'route: [{destination: {host: reviews, port: {number: 0}}}]'),
    errors: ['spec.http[0].route[0].destination.port.number: port number 0 must be in the range 1..65535'],
  },
  {
    name: 'destination port over 65535',
    yaml: http('port-70000', 'route: [{destination: {host: reviews, port: {number: 70000}}}]'),
    errors: ['spec.http[0].route[0].destination.port.number: port number 70000 must be in the range 1..65535'],
  },
  {
    name: 'mirrorPercentage over 100',
    yaml: http('mirror-150', `mirror: {host: ratings}\n    mirrorPercentage: {value: 150}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].mirrorPercentage.value: mirror_percentage must have a max value of 100 (it has 150.000000)'],
  },
  {
    name: 'mirror together with mirrors',
    yaml: http('mirror-mirrors', `mirror: {host: ratings}\n    mirrors: [{destination: {host: details}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0]: HTTP route cannot contain both mirror and mirrors'],
  },
  {
    name: 'all weights 0',
    yaml: http('weights-0', 'route: [{destination: {host: reviews}, weight: 0}, {destination: {host: ratings}, weight: 0}]'),
    errors: ['spec.http[0].route: total destination weight = 0'],
  },
  {
    name: 'several destinations without weights (all 0)',
    yaml: http('no-weights', 'route: [{destination: {host: reviews}}, {destination: {host: ratings}}]'),
    errors: ['spec.http[0].route: total destination weight = 0'],
  },
  {
    name: 'a non-IP address in a STATIC ServiceEntry endpoint',
    yaml: se(
      'static-name',
      '  hosts: [api.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: backend.example.com}]',
    ),
    errors: ['spec.endpoints[0].address: endpoint address "backend.example.com" is not a valid IP address'],
  },
  {
    name: 'locality distribute weights not summing to 100',
    yaml: dr(
      'distribute-90',
      '  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3}\n    loadBalancer:\n      localityLbSetting:\n        distribute: [{from: us-east/*, to: {us-east/*: 60, us-west/*: 30}}]',
    ),
    errors: ['spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to: total locality weight 90 != 100'],
  },
  {
    name: 'host * in a VirtualService bound to the mesh',
    yaml: `${head('VirtualService', 'star')}spec:\n  hosts: ["*"]\n  http: [{${TO_REVIEWS}}]`,
    errors: ['spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh gateway'],
  },
  {
    name: 'a subset name that is not a DNS-1123 label',
    yaml: dr('subset-name', '  subsets: [{name: V1_canary, labels: {version: v1}}]'),
    errors: ['spec.subsets[0].name: subset name is invalid: V1_canary'],
  },
  {
    name: 'a subset named by a route, not a DNS-1123 label',
    yaml: http('route-subset', 'route: [{destination: {host: reviews, subset: v1.0}}]'),
    errors: ['spec.http[0].route[0].destination.subset: subset name is invalid: v1.0'],
  },
  {
    name: 'abort status below 200',
    yaml: http('abort-99', `fault: {abort: {httpStatus: 99, percentage: {value: 100}}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.abort.httpStatus: HTTP status 99 is not in range 200-599'],
  },
  {
    name: 'abort status 1xx',
    yaml: http('abort-150', `fault: {abort: {httpStatus: 150}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.abort.httpStatus: HTTP status 150 is not in range 200-599'],
  },
  {
    name: 'abort status 600 (Envoy refuses it)',
    yaml: http('abort-600', `fault: {abort: {httpStatus: 600}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.abort.httpStatus: HTTP status 600 is not in range 200-599'],
  },
  {
    name: 'direct response status 1xx',
    yaml: http('direct-100', 'directResponse: {status: 100}'),
    errors: ['spec.http[0].directResponse.status: HTTP status 100 is not in range 200-599'],
  },
  {
    name: 'direct response status 199',
    yaml: http('direct-199', 'directResponse: {status: 199}'),
    errors: ['spec.http[0].directResponse.status: HTTP status 199 is not in range 200-599'],
  },
  {
    name: 'an http entry with neither route, redirect nor directResponse',
    yaml: http('no-action', 'match: [{uri: {prefix: /v1}}]\n    timeout: 1s'),
    errors: ['spec.http[0]: HTTP route, redirect or direct_response is required'],
  },
  {
    name: 'withoutHeaders regex "*" means "header present": valid',
    yaml: http('without-star', `match: [{withoutHeaders: {x-canary: {regex: "*"}}}]\n    ${TO_REVIEWS}`),
  },
  {
    name: 'headers regex "*" is still an RE2 error',
    yaml: http('headers-star', `match: [{headers: {x-canary: {regex: "*"}}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].headers.x-canary.regex: expected an RE2 regular expression, found "*"'],
  },
  {
    name: 'delegate VirtualService with gateways',
    yaml: `${head('VirtualService', 'delegate')}spec:\n  gateways: [mesh]\n  http: [{${TO_REVIEWS}}]`,
    errors: ['spec.gateways: delegate virtual service must have no gateways specified'],
  },
  { name: 'no routes at all', yaml: vs('no-http', ''), errors: ['spec: http, tcp or tls must be provided in virtual service'] },
  {
    name: 'empty fault',
    yaml: http('fault-empty', `fault: {}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault: HTTP fault injection must have an abort and/or a delay'],
  },
  {
    name: 'redirect with status 200',
    yaml: http('redirect-200', 'redirect: {uri: /x, redirectCode: 200}'),
    errors: ['spec.http[0].redirect.redirectCode: 200 is not a valid redirect code, must be 3xx'],
  },
  {
    name: 'empty rewrite',
    yaml: http('rewrite-empty', `rewrite: {}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].rewrite: rewrite must specify at least one of URI, UriRegexRewrite, or authority'],
  },
  {
    name: 'retry settings with attempts 0',
    yaml: http('attempts-0', `retries: {attempts: 0, perTryTimeout: 2s}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].retries: http retry policy configured when attempts are set to 0 (disabled)'],
  },
  {
    name: 'maglev table size not prime',
    yaml: dr('maglev', '  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 1000}}}}'),
    errors: ['spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: tableSize must be a prime number for maglev'],
  },
  {
    name: 'a port name that is not a DNS-1123 label',
    yaml: se('port-name', '  hosts: [api.example.com]\n  ports: [{number: 80, name: HTTP_1, protocol: HTTP}]\n  resolution: DNS'),
    errors: ['spec.ports[0].name: invalid port name: HTTP_1'],
  },
  {
    name: 'a WorkloadEntry address that is neither IP nor FQDN',
    yaml: we('bad-address', '  address: "not an ip!"'),
    errors: ['spec.address: endpoint address "not an ip!" is not a valid FQDN or an IP address'],
  },
  {
    name: 'a Sidecar egress host without namespace',
    yaml: sidecar('host-form', '  egress: [{hosts: [reviews]}]'),
    errors: ['spec.egress[0].hosts[0]: host must be of form namespace/dnsName'],
  },
  { name: 'an empty Sidecar', yaml: sidecar('empty', '  {}'), errors: ['spec: sidecar: empty configuration provided'] },
  {
    name: 'a DENY policy without rules',
    yaml: ap('deny-nothing', '  action: DENY'),
    errors: ['spec: DENY action without `rules` is meaningless as it will never be triggered'],
  },
  {
    name: 'an empty source',
    yaml: ap('empty-source', '  rules: [{from: [{source: {}}]}]'),
    errors: ['spec.rules[0].from[0].source: `from.source` must not be empty, found at rule 0'],
  },
  {
    name: 'setting a pseudo-header and removing Host',
    yaml: http('pseudo-header', `headers: {request: {set: {":path": /x}, remove: [host]}}\n    ${TO_REVIEWS}`),
    errors: [
      'spec.http[0].headers.request.set.:path: invalid header ":path": header cannot have ":" prefix',
      'spec.http[0].headers.request.remove[0]: invalid header "host": cannot set Host header',
    ],
  },
  {
    name: 'an empty scheme prefix',
    yaml: http('scheme-prefix', `match: [{scheme: {prefix: ""}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].scheme.prefix: "scheme": prefix string match should not be empty'],
  },
  { name: 'an empty uri prefix is allowed', yaml: http('uri-prefix', `match: [{uri: {prefix: ""}}]\n    ${TO_REVIEWS}`) },
  {
    name: 'overlapping hosts',
    yaml: `${head('VirtualService', 'dup-hosts')}spec:\n  hosts: [reviews.shop.svc.cluster.local, "*.svc.cluster.local"]\n  http: [{${TO_REVIEWS}}]`,
    errors: ['spec.hosts[1]: duplicate hosts in virtual service: reviews.shop.svc.cluster.local & *.svc.cluster.local'],
  },
  {
    name: 'exportTo * with other namespaces',
    yaml: vs('export', `  exportTo: [".", "*"]\n  http: [{${TO_REVIEWS}}]`),
    errors: ['spec.exportTo: cannot have both public (*) and non-public exportTo values for a resource'],
  },
  {
    name: 'HTTP/2 keepalive without interval',
    yaml: dr('keepalive', '  trafficPolicy: {connectionPool: {http: {http2KeepAlive: {timeout: 1s}}}}'),
    errors: ['spec.trafficPolicy.connectionPool.http.http2KeepAlive: http2 keepalive interval is required'],
  },
  {
    name: 'an unsupported CORS method',
    yaml: http('cors', `corsPolicy: {allowMethods: [FETCH]}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].corsPolicy.allowMethods[0]: "FETCH" is not a supported HTTP method'],
  },
  {
    name: 'an invalid gateway name',
    yaml: vs('gateway-name', `  gateways: ["ns/Bad_Name"]\n  http: [{${TO_REVIEWS}}]`),
    errors: ['spec.gateways[0]: invalid value for gateway name: "Bad_Name"'],
  },
  {
    name: 'a negative delay percentage',
    yaml: http('delay-neg', `fault: {delay: {fixedDelay: 1s, percentage: {value: -1}}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.delay.percentage.value: percentage -1 is neither 0.0, nor in range [0.0001, 100.0]'],
  },
  {
    name: 'destination host *',
    yaml: http('dest-star', 'route: [{destination: {host: "*"}}]'),
    errors: ['spec.http[0].route[0].destination.host: invalid destination host *'],
  },
  {
    name: 'a ServiceEntry address that is not an IP',
    yaml: se('addr', '  hosts: [api.example.com]\n  addresses: [not-an-ip]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS'),
    errors: ['spec.addresses[0]: not-an-ip is not a valid IP'],
  },
  {
    name: 'an unknown protocol',
    yaml: se('proto', '  hosts: [api.example.com]\n  ports: [{number: 80, name: http, protocol: FOO}]\n  resolution: DNS'),
    errors: ['spec.ports[0].protocol: unsupported protocol: FOO'],
  },
  {
    name: 'several hosts on a TCP port',
    yaml: se('multi-tcp', '  hosts: [a.example.com, b.example.com]\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n  resolution: DNS'),
    errors: ['spec.ports[0].protocol: multiple hosts provided with non-HTTP, non-TLS ports'],
  },
  {
    name: 'an empty traffic policy',
    yaml: dr('empty-policy', '  trafficPolicy: {}'),
    errors: ['spec.trafficPolicy: traffic policy must have at least one field'],
  },
  {
    name: 'retryOn with a blank after the comma',
    yaml: http('retry-on-blank', `retries: {attempts: 2, retryOn: "5xx, reset"}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].retries.retryOn: " reset" is not a valid retryOn policy; did you mean "reset"?'],
  },
  {
    name: 'a timeout below millisecond precision',
    yaml: http('timeout-us', `timeout: 1500us\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].timeout: only durations to ms precision are supported'],
  },
];

const HTTP_PORTS = '  ports: [{number: 80, protocol: http, name: http-valid1}, {number: 8080, protocol: http, name: http-valid2}]';

/** Cases of Istio's validation_test.go and virtualservice_test.go, as YAML. */
const fromIstioTests: Case[] = [
  // TestValidateVirtualService
  { name: 'VS: simple', yaml: `${head('VirtualService', 'simple')}spec:\n  hosts: [foo.bar]\n  http: [{route: [{destination: {host: foo.baz}}]}]` },
  {
    name: 'VS: duplicate wildcard hosts',
    yaml: `${head('VirtualService', 'dup')}spec:\n  hosts: ["*.foo.bar", "*.bar"]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.hosts[1]: duplicate hosts in virtual service: *.foo.bar & *.bar'],
  },
  { name: 'VS: delegate without hosts', yaml: `${head('VirtualService', 'delegate')}spec:\n  http: [{route: [{destination: {host: foo.baz}}]}]` },
  {
    name: 'VS: bad host',
    yaml: `${head('VirtualService', 'bad-host')}spec:\n  hosts: [foo.ba!r]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.hosts[0]: domain name "ba!r" invalid (label "ba!r" invalid)'],
  },
  {
    name: 'VS: an IP address as host',
    yaml: `${head('VirtualService', 'ip-host')}spec:\n  hosts: [10.0.0.1]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
  },
  {
    name: 'VS: bad gateway',
    yaml: `${head('VirtualService', 'bad-gw')}spec:\n  hosts: [foo.bar]\n  gateways: [b@dgateway]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.gateways[0]: domain name "b@dgateway" invalid (label "b@dgateway" invalid)'],
  },
  {
    name: 'VS: FQDN gateway name warns',
    yaml: `${head('VirtualService', 'fqdn-gw')}spec:\n  hosts: [foo.bar]\n  gateways: [gateway.example.com]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
    warnings: ['spec.gateways[0]: using legacy gatewayName format "gateway.example.com"; prefer the <namespace>/<name> format: "example/gateway"'],
  },
  {
    name: 'VS: namespace/* gateway',
    yaml: `${head('VirtualService', 'ns-star-gw')}spec:\n  hosts: [foo.bar]\n  gateways: [ns1/*]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.gateways[0]: invalid value for gateway name: "*"'],
  },
  {
    name: 'VS: */name gateway',
    yaml: `${head('VirtualService', 'star-ns-gw')}spec:\n  hosts: [foo.bar]\n  gateways: ["*/gateway"]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.gateways[0]: invalid value for namespace: "*"'],
  },
  {
    name: 'VS: host * bound to a gateway',
    yaml: `${head('VirtualService', 'star-gw')}spec:\n  hosts: ["*"]\n  gateways: [somegateway]\n  http: [{route: [{destination: {host: foo.baz}}]}]`,
  },
  {
    name: 'VS: tcp route without destinations',
    yaml: `${head('VirtualService', 'tcp')}spec:\n  hosts: [foo.bar]\n  tcp: [{match: [{port: 999}]}]`,
    errors: ['spec.tcp[0].route: TCP route is required'],
  },
  {
    name: 'VS: tls route without destinations',
    yaml: `${head('VirtualService', 'tls')}spec:\n  hosts: [foo.bar]\n  tls: [{match: [{port: 999, sniHosts: [foo.bar]}]}]`,
    errors: ['spec.tls[0].route: TLS route is required'],
  },
  {
    name: 'VS: deprecated mirrorPercent warns',
    yaml: `${head('VirtualService', 'mirror-percent')}spec:\n  hosts: [foo.bar]\n  http: [{mirrorPercent: 5, route: [{destination: {host: foo.baz}}]}]`,
    warnings: ['spec.http[0].mirrorPercent: using deprecated setting "mirrorPercent", use "mirrorPercentage" instead'],
  },
  {
    name: 'VS: deprecated mirrorPercent over 100',
    yaml: `${head('VirtualService', 'mirror-percent-150')}spec:\n  hosts: [foo.bar]\n  http: [{mirrorPercent: 150, route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.http[0].mirrorPercent: mirror_percent must have a max value of 100 (it has 150)'],
  },
  { name: 'VS: set :authority', yaml: http('set-authority', `headers: {request: {set: {":authority": foo}}}\n    ${TO_REVIEWS}`) },
  {
    name: 'VS: set :authority in a destination',
    yaml: http('set-authority-dest', 'route: [{destination: {host: foo.baz}, headers: {request: {set: {":authority": foo}}}}]'),
  },
  {
    name: 'VS: authority in rewrite and header',
    yaml: http('authority-twice', `headers: {request: {set: {":authority": foo}}}\n    rewrite: {authority: bar}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].headers.request.set.:authority: authority header cannot be set multiple times: have "bar", attempting to set "foo"'],
  },
  {
    name: 'VS: a later prefix covered by an earlier one (non-method-get)',
    yaml: http('non-method-get', `match: [{uri: {prefix: /api/v1/product}}, {uri: {prefix: /api/v1/products}, method: {exact: GET}}]\n    ${TO_REVIEWS}`),
    warnings: [
      'spec.http[0].match[1]: virtualService rule #0 match #1 of prefix /api/v1/products is not used (duplicate/overlapping match in rule #0 of prefix /api/v1/product on #0)',
    ],
  },
  {
    name: 'VS: prefix then exact on the same path is fine',
    yaml: http('prefix-exact', `match: [{uri: {prefix: /}}, {uri: {exact: /}, method: {exact: GET}}]\n    ${TO_REVIEWS}`),
  },
  {
    name: 'VS: JWT claim routing without a gateway',
    yaml: vs('jwt', `  gateways: [mesh]\n  http:\n  - match: [{uri: {prefix: /}, headers: {"@request.auth.claims.foo": {exact: bar}}}]\n    ${TO_REVIEWS}`),
    errors: [
      'spec.http[0].match[0].headers.@request.auth.claims.foo: JWT claim based routing (key: @request.auth.claims.foo) is only supported for gateway, found no gateways: [mesh]',
    ],
  },
  {
    name: 'VS: an IP address as SNI host warns',
    yaml: `${head('VirtualService', 'sni-ip')}spec:\n  hosts: [foo.bar]\n  tls: [{match: [{port: 999, sniHosts: [1.1.1.1]}], route: [{destination: {host: foo.baz}}]}]`,
    warnings: ['spec.tls[0].match[0].sniHosts[0]: using an IP address ("1.1.1.1") goes against SNI spec'],
  },
  {
    name: 'VS: an invalid wildcard SNI host',
    yaml: `${head('VirtualService', 'sni-wild')}spec:\n  hosts: [foo.bar]\n  tls: [{match: [{port: 999, sniHosts: [foo.*.com]}], route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.tls[0].match[0].sniHosts[0]: domain name "*.com" invalid (label "*" invalid)'],
  },
  {
    name: 'VS: an SNI host outside the hosts',
    yaml: `${head('VirtualService', 'sni-other')}spec:\n  hosts: [foo.bar]\n  tls: [{match: [{sniHosts: [other.bar]}], route: [{destination: {host: foo.baz}}]}]`,
    errors: ['spec.tls[0].match[0].sniHosts[0]: SNI host "other.bar" is not a compatible subset of any of the virtual service hosts: [foo.bar]'],
  },
  {
    name: 'VS: a second catch-all rule is unreachable',
    yaml: vs('catch-all', `  http:\n  - ${TO_REVIEWS}\n  - route: [{destination: {host: ratings}}]`),
    warnings: ['spec.http[1]: virtualService rule #1 not used (only the last rule can have no matches)'],
  },
  {
    name: 'VS: a repeated match is ineffective',
    yaml: vs(
      'repeated',
      `  http:\n  - name: a\n    match: [{uri: {exact: /x}}]\n    ${TO_REVIEWS}\n  - name: b\n    match: [{uri: {exact: /x}, name: again}]\n    route: [{destination: {host: ratings}}]`,
    ),
    warnings: [
      'spec.http[1].match[0]: virtualService rule "b" match "again" is not used (duplicate/overlapping match in rule "a")',
      'spec.http[1]: virtualService rule "b" not used (all matches used by prior rules)',
    ],
  },
  // TestValidateHTTPRoute / TestValidateRootHTTPRoute / TestValidateDelegateHTTPRoute
  {
    name: 'route: prefix_rewrite redirect with a prefix URI match',
    yaml: http('prefix-rewrite', 'match: [{uri: {prefix: /foo}}]\n    redirect: {prefixRewrite: /bar}'),
  },
  {
    name: 'route: prefix_rewrite redirect with an exact URI match',
    yaml: http('prefix-rewrite-exact', 'match: [{uri: {exact: /foo}}]\n    redirect: {prefixRewrite: /bar}'),
    errors: ['spec.http[0].redirect.prefixRewrite: redirect prefix_rewrite requires all URI matches to use prefix match type'],
  },
  {
    name: 'route: redirect with uri and prefix_rewrite',
    yaml: http('redirect-both', 'redirect: {uri: /a, prefixRewrite: /b}'),
    errors: ['spec.http[0].redirect: redirect may only specify one of uri or prefix_rewrite'],
  },
  {
    name: 'route: an empty redirect',
    yaml: http('redirect-empty', 'redirect: {}'),
    errors: ['spec.http[0].redirect: redirect must specify URI, authority, scheme, or port'],
  },
  {
    name: 'route: redirect to ftp',
    yaml: http('redirect-ftp', 'redirect: {scheme: ftp}'),
    errors: ['spec.http[0].redirect.scheme: invalid redirect scheme, must be "http" or "https"'],
  },
  { name: 'route: redirect derivePort only', yaml: http('redirect-derive', 'redirect: {derivePort: FROM_REQUEST_PORT}') },
  {
    name: 'route: directResponse with a redirect',
    yaml: http('direct-redirect', 'redirect: {uri: /x}\n    directResponse: {status: 200}'),
    errors: ['spec.http[0]: HTTP route rule cannot contain both direct_response and redirect'],
  },
  {
    name: 'route: directResponse with a route and a fault',
    yaml: http('direct-route', `directResponse: {status: 200}\n    fault: {abort: {httpStatus: 500}}\n    ${TO_REVIEWS}`),
    errors: [
      'spec.http[0]: HTTP route cannot contain both route and direct_response',
      'spec.http[0]: HTTP route cannot contain both fault and direct_response',
    ],
  },
  {
    name: 'route: a large direct response body warns',
    yaml: http('direct-large', `directResponse: {status: 200, body: {string: "${'x'.repeat(110 * 1024)}"}}`),
    warnings: ['spec.http[0].directResponse.body: large direct_responses may impact control plane performance'],
  },
  {
    name: 'route: a direct response body over 1MB',
    yaml: http('direct-huge', `directResponse: {status: 200, body: {string: "${'x'.repeat(1024 * 1024 + 1)}"}}`),
    errors: ['spec.http[0].directResponse.body: large direct_responses may impact control plane performance, must be less than 1MB'],
  },
  {
    name: 'route: rewrite uri with uriRegexRewrite',
    yaml: http('rewrite-both', `rewrite: {uri: /a, uriRegexRewrite: {match: "^/x", rewrite: /y}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].rewrite: rewrite may only contain one of URI or UriRegexRewrite'],
  },
  {
    name: 'route: uriRegexRewrite without rewrite',
    yaml: http('regex-rewrite-half', `rewrite: {uriRegexRewrite: {match: "^/x"}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].rewrite.uriRegexRewrite: UriRegexRewrite has errors: UriRegexRewrite requires both Rewrite and Match fields to be specified'],
  },
  {
    name: 'route: root route with a delegate and a route',
    yaml: http('root', `name: r\n    delegate: {name: child}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].route: root HTTP route r must not specify route'],
  },
  {
    name: 'route: a delegate route with a delegate',
    yaml: `${head('VirtualService', 'child')}spec:\n  http: [{delegate: {name: grandchild}}]`,
    errors: ['spec.http[0].delegate: delegate HTTP route cannot contain delegate', 'spec.http[0]: HTTP route, redirect or direct_response is required'],
  },
  { name: 'route: a root route delegating', yaml: http('root-ok', 'match: [{uri: {prefix: /}}]\n    delegate: {name: child}') },
  {
    name: 'route: grpc abort with an unknown status',
    yaml: http('grpc-abort', `fault: {abort: {grpcStatus: NOT_A_STATUS}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.abort.grpcStatus: gRPC status "NOT_A_STATUS" is not supported'],
  },
  { name: 'route: grpc abort', yaml: http('grpc-abort-ok', `fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 10}}}\n    ${TO_REVIEWS}`) },
  {
    name: 'route: http2Error abort',
    yaml: http('h2-abort', `fault: {abort: {http2Error: REFUSED_STREAM}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.abort.http2Error: HTTP/2 abort fault injection not supported yet'],
  },
  {
    name: 'route: abort without error type warns',
    yaml: http('abort-untyped', `fault: {abort: {percentage: {value: 10}}}\n    ${TO_REVIEWS}`),
    warnings: ['spec.http[0].fault.abort: abort configured, but error type not set'],
  },
  {
    name: 'route: exponential delay',
    yaml: http('exp-delay', `fault: {delay: {exponentialDelay: 1s}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.delay.exponentialDelay: exponentialDelay not supported yet'],
  },
  {
    name: 'route: a tiny fractional percentage',
    yaml: http('tiny-percent', `fault: {delay: {fixedDelay: 1s, percentage: {value: 0.00001}}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].fault.delay.percentage.value: percentage 0.00001 is neither 0.0, nor in range [0.0001, 100.0]'],
  },
  {
    name: 'route: retryOn with a status Go does not know',
    yaml: http('retry-600', `retries: {attempts: 2, retryOn: "600,connect-failure"}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].retries.retryOn: "600" is not a valid retryOn policy'],
  },
  { name: 'route: retryOn with status codes', yaml: http('retry-503', `retries: {attempts: 2, retryOn: "503,connect-failure"}\n    ${TO_REVIEWS}`) },
  {
    name: 'route: retryRemoteLocalities with attempts 0',
    yaml: http('remote-0', `retries: {attempts: 0, retryRemoteLocalities: false}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].retries: http retry policy configured when attempts are set to 0 (disabled)'],
  },
  {
    name: 'route: header value with an unescaped %',
    yaml: http('percent-value', `headers: {request: {add: {x-a: "100%"}}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].headers.request.add.x-a: header value configuration: invalid header configuration. Un-escaped %'],
  },
  {
    name: 'route: header values with Envoy variables',
    yaml: http('variables', `headers: {response: {set: {x-a: "%HOSTNAME%", x-b: "100%%", x-c: "%REQ(x-id)%"}}}\n    ${TO_REVIEWS}`),
  },
  {
    name: 'route: an unterminated variable',
    yaml: http('unterminated', `headers: {response: {set: {x-a: "%START_TIME"}}}\n    ${TO_REVIEWS}`),
    errors: [
      "spec.http[0].headers.response.set.x-a: header value configuration: invalid header configuration. Un-terminated variable expression '%START_TIME'",
    ],
  },
  {
    name: 'route: removing a response header named host',
    yaml: http('response-host', `headers: {response: {remove: [Host]}}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].headers.response.remove[0]: invalid header "Host": cannot set Host header'],
  },
  {
    name: 'route: matching a header name with a blank',
    yaml: http('header-blank', `match: [{headers: {"x user": {exact: a}}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].headers.x user: header name x user is not a valid header name'],
  },
  {
    name: 'route: an empty regex',
    yaml: http('empty-regex', `match: [{headers: {x-a: {regex: ""}}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].headers.x-a.regex: "headers": regex string match should not be empty'],
  },
  {
    name: 'route: a regex over 1024 characters',
    yaml: http('long-regex', `match: [{uri: {regex: "${'a'.repeat(1025)}"}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].uri.regex: "uri": regex is too large, max length allowed is 1024'],
  },
  {
    name: 'route: an empty query parameter prefix',
    yaml: http('query-prefix', `match: [{queryParams: {page: {prefix: ""}}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].queryParams.page.prefix: "queryParams": prefix string match should not be empty'],
  },
  {
    name: 'route: an invalid sourceNamespace',
    yaml: http('source-ns', `match: [{sourceNamespace: Bad_NS}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].sourceNamespace: sourceNamespace match Bad_NS is invalid'],
  },
  {
    name: 'route: an invalid source label',
    yaml: http('source-label', `match: [{sourceLabels: {"app!": x}}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].sourceLabels: invalid tag key: "app!"'],
  },
  {
    name: 'route: a match port over 65535',
    yaml: http('match-port', `match: [{port: 70000}]\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].match[0].port: port number 70000 must be in the range 1..65535'],
  },
  {
    name: 'route: destination host with a namespace',
    yaml: http('dest-ns', 'route: [{destination: {host: default/baz}}]'),
    errors: ['spec.http[0].route[0].destination.host: domain name "default/baz" invalid (label "default/baz" invalid)'],
  },
  {
    name: 'route: destination host foo.*',
    yaml: http('dest-wild', 'route: [{destination: {host: "foo.*"}}]'),
    errors: ['spec.http[0].route[0].destination.host: domain name "*" invalid (label "*" invalid)'],
  },
  {
    name: 'route: wildcard destination hosts',
    yaml: http('dest-wild-ok', 'route: [{destination: {host: "*-foo.baz"}, weight: 50}, {destination: {host: "*foo.baz"}, weight: 50}]'),
  },
  {
    name: 'route: weights over 100 in total',
    yaml: http('weights-1050', 'route: [{destination: {host: foo.baz.south}, weight: 550}, {destination: {host: foo.baz.east}, weight: 500}]'),
  },
  {
    name: 'route: CORS max age below a second',
    yaml: http('cors-age', `corsPolicy: {maxAge: 1500ms, allowOrigins: [{exact: ""}]}\n    ${TO_REVIEWS}`),
    errors: [
      "spec.http[0].corsPolicy.allowOrigins[0]: '' is not a valid match type for CORS allow origins",
      'spec.http[0].corsPolicy.maxAge: max_age duration is accurate only to seconds precision',
    ],
  },
  {
    name: 'route: CORS header names',
    yaml: http('cors-headers', `corsPolicy: {allowHeaders: ["*", x-a], exposeHeaders: ["x b"]}\n    ${TO_REVIEWS}`),
    errors: ['spec.http[0].corsPolicy.exposeHeaders[0]: header name x b is not a valid header name'],
  },
  {
    name: 'VS: exportTo its own namespace and .',
    yaml: vs('export-dup', `  exportTo: [shop, "."]\n  http: [{${TO_REVIEWS}}]`),
    errors: ['spec.exportTo[1]: duplicate entries in exportTo: . and current namespace shop'],
  },
  {
    name: 'VS: exportTo . and its own namespace',
    yaml: vs('export-dup2', `  exportTo: [".", shop]\n  http: [{${TO_REVIEWS}}]`),
    errors: ['spec.exportTo[1]: duplicate entries in exportTo for entry shop'],
  },
  {
    name: 'VS: exportTo an invalid namespace',
    yaml: vs('export-bad', `  exportTo: ["Bad!"]\n  http: [{${TO_REVIEWS}}]`),
    errors: ['spec.exportTo[0]: only .,*, or a valid DNS 1123 label is allowed as exportTo entry'],
  },

  // TestValidateDestinationRule, TestValidateTrafficPolicy, TestValidateLoadBalancer, TestValidateConnectionPool
  { name: 'DR: simple', yaml: dr('simple', '  subsets: [{name: v1, labels: {version: v1}}]') },
  {
    name: 'DR: workload selector without labels warns',
    yaml: dr('empty-selector', '  workloadSelector: {}'),
    warnings: ['spec.workloadSelector.matchLabels: workload selector specified without labels'],
  },
  {
    name: 'DR: workload selector with exportTo elsewhere',
    yaml: dr('selector-export', '  workloadSelector: {matchLabels: {app: a}}\n  exportTo: [other]'),
    errors: ['spec.exportTo: destination rule with workload selector cannot have exportTo beyond current namespace'],
  },
  {
    name: 'DR: duplicate subset names',
    yaml: dr('dup-subsets', '  subsets: [{name: foo, labels: {version: v1}}, {name: foo, labels: {version: v2}}]'),
    errors: ['spec.subsets[1].name: duplicate subset names: foo'],
  },
  {
    name: 'DR: a bad subset label value',
    yaml: dr('subset-label', '  subsets: [{name: v1, labels: {version: "v1!"}}]'),
    errors: ['spec.subsets[0].labels: invalid tag value: "v1!"'],
  },
  {
    name: 'DR: a wildcard in the middle of the host',
    yaml: `${head('DestinationRule', 'host')}spec:\n  host: "foo.*.com"`,
    errors: ['spec.host: domain name "*.com" invalid (label "*" invalid)'],
  },
  {
    name: 'DR: an empty subset traffic policy',
    yaml: dr('subset-policy', '  subsets: [{name: v1, labels: {version: v1}, trafficPolicy: {}}]'),
    errors: ['spec.subsets[0].trafficPolicy: traffic policy must have at least one field'],
  },
  {
    name: 'DR: tunnel with proxyProtocol',
    yaml: dr('tunnel-proxy', '  trafficPolicy: {tunnel: {targetHost: example.com, targetPort: 443}, proxyProtocol: {version: V1}}'),
    errors: ['spec.trafficPolicy: tunnel and proxyProtocol must not be set together'],
  },
  {
    name: 'DR: tunnel with a bad protocol, host and port',
    yaml: dr('tunnel', '  trafficPolicy: {tunnel: {protocol: GET, targetHost: "bad host", targetPort: 70000}}'),
    errors: [
      'spec.trafficPolicy.tunnel.protocol: tunnel protocol must be "CONNECT" or "POST"',
      'spec.trafficPolicy.tunnel.targetHost: tunnel target host must be valid FQDN or IP address',
      'spec.trafficPolicy.tunnel.targetPort: tunnel target port is invalid: port number 70000',
    ],
  },
  {
    name: 'DR: maglev table size 0',
    yaml: dr('maglev-0', '  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 0}}}}'),
    errors: ['maglev.tableSize: tableSize must be set for maglev', 'maglev.tableSize: tableSize must be a prime number for maglev'],
  },
  {
    name: 'DR: maglev table size too large',
    yaml: dr('maglev-big', '  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 5000011}}}}'),
    errors: ['maglev.tableSize: tableSize must be less than 5000011 for maglev'],
  },
  {
    name: 'DR: maglev with a prime table size',
    yaml: dr('maglev-ok', '  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}}'),
  },
  {
    name: 'DR: minimumRingSize with ringHash',
    yaml: dr('ring', '  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 1024, ringHash: {minimumRingSize: 1024}}}}'),
    errors: ['consistentHash.minimumRingSize: only one of MinimumRingSize or Maglev/Ringhash can be specified'],
    warnings: ["consistentHash.minimumRingSize: consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead"],
  },
  {
    name: 'DR: cookie with an empty name',
    yaml: dr('cookie', '  trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: "", ttl: 0s}}}}'),
    errors: ['consistentHash.httpCookie.name: name required for HttpCookie'],
  },
  {
    name: 'DR: duplicate cookie attributes',
    yaml: dr(
      'cookie-attrs',
      '  trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s, attributes: [{name: SameSite, value: Lax}, {name: SameSite, value: Strict}]}}}}',
    ),
    errors: ['consistentHash.httpCookie.attributes[1].name: duplicate cookie attribute name: SameSite'],
  },
  {
    name: 'DR: locality weight 0',
    yaml: dr(
      'weight-0',
      '  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3}\n    loadBalancer: {localityLbSetting: {distribute: [{from: a/*, to: {a/*: 0, b/*: 100}}]}}',
    ),
    errors: ['localityLbSetting.distribute[0].to.a/*: locality weight must be in range [1, 100]'],
  },
  {
    name: 'DR: distribute with failover',
    yaml: dr(
      'both',
      '  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3}\n    loadBalancer: {localityLbSetting: {distribute: [{from: a/*, to: {b/*: 100}}], failover: [{from: a, to: b}]}}',
    ),
    errors: ["localityLbSetting: can not simultaneously specify 'distribute' and 'failover'"],
  },
  {
    name: 'DR: failover to the same region, with a zone, with a wildcard',
    yaml: dr(
      'failover',
      '  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3}\n    loadBalancer: {localityLbSetting: {failover: [{from: a, to: a}, {from: a/z, to: b}, {from: "a*", to: b}]}}',
    ),
    errors: [
      'failover[0]: locality lb failover settings must specify different regions',
      'failover[1]: locality lb failover only specify region',
      "failover[2]: locality lb failover region should not contain '*' wildcard",
    ],
  },
  {
    name: 'DR: failover with a topology label in failoverPriority',
    yaml: dr(
      'priority',
      '  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3}\n    loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}], failoverPriority: [topology.kubernetes.io/region]}}',
    ),
    errors: [
      "localityLbSetting.failoverPriority: can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/region' in 'failover_priority'",
    ],
  },
  {
    name: 'DR: failover without outlier detection warns',
    yaml: dr('no-outlier', '  trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}]}}}'),
    warnings: ['localityLbSetting: outlier detection policy must be provided for failover'],
  },
  {
    name: 'DR: overlapping distribute sources',
    yaml: dr(
      'overlap',
      '  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3}\n    loadBalancer: {localityLbSetting: {distribute: [{from: a/*, to: {b/*: 100}}, {from: a/z1, to: {b/*: 100}}]}}',
    ),
    errors: ['localityLbSetting.distribute: locality a/z1 overlap with previous specified ones'],
  },
  {
    name: 'DR: warmup out of range',
    yaml: dr('warmup', '  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 10s, aggression: 0}}}'),
    errors: ['warmup.aggression: aggression should be greater than 0'],
  },
  {
    name: 'DR: useClientProtocol with UPGRADE',
    yaml: dr('upgrade', '  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}'),
    errors: ['spec.trafficPolicy.connectionPool.http.useClientProtocol: use client protocol must not be true when H2UpgradePolicy is UPGRADE'],
  },
  {
    name: 'DR: durations below millisecond precision',
    yaml: dr('precision', '  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 1500us}}, outlierDetection: {interval: 1.0001s}}'),
    errors: ['outlierDetection.interval: only durations to ms precision are supported', 'tcp.connectTimeout: only durations to ms precision are supported'],
  },
  { name: 'DR: a TCP idle timeout of 0 turns it off', yaml: dr('idle-0', '  trafficPolicy: {connectionPool: {tcp: {idleTimeout: 0s}}}') },
  {
    name: 'DR: MUTUAL TLS without certificate or key',
    yaml: dr('mutual', '  trafficPolicy: {tls: {mode: MUTUAL}}'),
    errors: [
      'spec.trafficPolicy.tls.clientCertificate: client certificate required for mutual tls',
      'spec.trafficPolicy.tls.privateKey: private key required for mutual tls',
    ],
  },
  {
    name: 'DR: SIMPLE TLS skipping verification with a CA',
    yaml: dr('skip-ca', '  trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /etc/ca.pem}}'),
    errors: ['spec.trafficPolicy.tls: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true'],
  },
  { name: 'DR: SIMPLE TLS skipping verification, no CA', yaml: dr('skip', '  trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}') },
  {
    name: 'DR: MUTUAL TLS skipping verification with SANs',
    yaml: dr(
      'skip-san',
      '  trafficPolicy: {tls: {mode: MUTUAL, insecureSkipVerify: true, clientCertificate: /c.pem, privateKey: /k.pem, subjectAltNames: [a]}}',
    ),
    errors: ['spec.trafficPolicy.tls: cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true'],
  },
  {
    name: 'DR: credentialName with files',
    yaml: dr('credential', '  trafficPolicy: {tls: {mode: SIMPLE, credentialName: secret, caCertificates: /ca.pem}}'),
    errors: ['spec.trafficPolicy.tls: cannot specify client certificates or CA certificate or CA CRL If credentialName is set'],
  },
  {
    name: 'DR: a configmap credential in another namespace',
    yaml: dr('configmap', '  trafficPolicy: {tls: {mode: SIMPLE, credentialName: "configmap://other/ca"}}'),
    errors: ['spec.trafficPolicy.tls.credentialName: invalid configmap:// credentialName: namespace must match the configuration namespace "shop"'],
  },
  {
    name: 'DR: a port-level policy without port or settings',
    yaml: dr('port-level', '  trafficPolicy: {portLevelSettings: [{port: {number: 80}, loadBalancer: {simple: RANDOM}}, {}]}'),
    errors: ['portLevelSettings[1]: portTrafficPolicy must have valid port', 'portLevelSettings[1]: port traffic policy must have at least one field'],
  },

  // TestValidateServiceEntries
  {
    name: 'SE: DNS with FQDN endpoints',
    yaml: se(
      'dns',
      `  hosts: ["*.google.com"]\n${HTTP_PORTS}\n  resolution: DNS\n  endpoints: [{address: lon.google.com, ports: {http-valid1: 8080}}, {address: in.google.com, ports: {http-valid2: 9080}}]`,
    ),
  },
  {
    name: 'SE: short name hosts',
    yaml: se('short', `  hosts: [foo, bar.com]\n${HTTP_PORTS}\n  resolution: DNS\n  endpoints: [{address: in.google.com, ports: {http-valid1: 9080}}]`),
  },
  {
    name: 'SE: an endpoint port the service does not define',
    yaml: se('undefined-port', `  hosts: [google.com]\n${HTTP_PORTS}\n  resolution: DNS\n  endpoints: [{address: in.google.com, ports: {http-dne: 9080}}]`),
    errors: ['spec.endpoints[0].ports.http-dne: endpoint port 9080 is not defined by the service entry'],
  },
  {
    name: 'SE: a wildcard endpoint with DNS',
    yaml: se('dns-wild-endpoint', `  hosts: ["*.google.com"]\n${HTTP_PORTS}\n  resolution: DNS\n  endpoints: [{address: "*.lon.google.com"}]`),
    errors: ['spec.endpoints[0].address: endpoint address "*.lon.google.com" is not a valid FQDN or an IP address'],
  },
  {
    name: 'SE: a wildcard host with DNS and no endpoints',
    yaml: se('dns-wild', `  hosts: ["*.google.com"]\n${HTTP_PORTS}\n  resolution: DNS`),
    errors: ['spec.hosts[0]: hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode DNS'],
  },
  {
    name: 'SE: a unix endpoint with DNS',
    yaml: se(
      'dns-unix',
      '  hosts: ["*.google.com"]\n  ports: [{number: 80, protocol: http, name: http-valid1}]\n  resolution: DNS\n  endpoints: [{address: "unix:///lon/google/com"}]',
    ),
    errors: ['spec.endpoints[0].address: endpoint address "unix:///lon/google/com" is not a valid FQDN or an IP address'],
  },
  {
    name: 'SE: a unix socket endpoint',
    yaml: se(
      'unix',
      '  hosts: [uds.cluster.local]\n  ports: [{number: 6553, protocol: grpc, name: grpc-service1}]\n  resolution: STATIC\n  endpoints: [{address: "unix:///path/to/socket"}]',
    ),
  },
  {
    name: 'SE: a unix socket on a relative path',
    yaml: se(
      'unix-relative',
      '  hosts: [uds.cluster.local]\n  ports: [{number: 6553, protocol: grpc, name: grpc-service1}]\n  resolution: STATIC\n  endpoints: [{address: "unix://./relative/path.sock"}]',
    ),
    // The CRD's own rule refuses it before Istio's.
    errors: ['spec.endpoints[0].address: UDS must be an absolute path or abstract socket'],
  },
  {
    name: 'SE: a unix socket with ports',
    yaml: se(
      'unix-ports',
      '  hosts: [uds.cluster.local]\n  ports: [{number: 6553, protocol: grpc, name: grpc-service1}]\n  resolution: STATIC\n  endpoints: [{address: "unix:///path/to/socket", ports: {grpc-service1: 6553}}]',
    ),
    errors: ['spec.endpoints[0]: UDS may not include ports'],
  },
  {
    name: 'SE: a unix socket with two service ports',
    yaml: se(
      'unix-two',
      '  hosts: [uds.cluster.local]\n  ports: [{number: 6553, protocol: grpc, name: grpc-service1}, {number: 80, protocol: http, name: http-service2}]\n  resolution: STATIC\n  endpoints: [{address: "unix:///path/to/socket"}]',
    ),
    errors: ['spec.endpoints[0]: exactly 1 service port required for unix endpoints'],
  },
  {
    name: 'SE: STATIC with an FQDN endpoint',
    yaml: se('static-fqdn', `  hosts: [google.com]\n${HTTP_PORTS}\n  resolution: STATIC\n  endpoints: [{address: in.google.com}]`),
    errors: ['spec.endpoints[0].address: endpoint address "in.google.com" is not a valid IP address'],
  },
  {
    name: 'SE: STATIC with a bad endpoint port name',
    yaml: se('static-port', `  hosts: [google.com]\n${HTTP_PORTS}\n  resolution: STATIC\n  endpoints: [{address: 1.1.1.1, ports: {"-bad": 9080}}]`),
    errors: ['spec.endpoints[0].ports: port name must be valid (found key "-bad")'],
  },
  {
    name: 'SE: an invalid target port',
    yaml: se('target-port', '  hosts: [google.com]\n  ports: [{number: 80, protocol: http, name: http-valid1, targetPort: 65536}]\n  resolution: DNS'),
    errors: ['spec.ports[0].targetPort: port must be between 1-65535 (found 65536)'],
  },
  {
    name: 'SE: a TCP port without addresses with resolution NONE warns',
    yaml: se('tcp-none', '  hosts: [google.com]\n  ports: [{number: 81, protocol: TCP, name: tcp}]\n  resolution: NONE'),
    warnings: ['spec.ports[0]: addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled'],
  },
  {
    name: 'SE: a partial wildcard host warns',
    yaml: se('partial', '  hosts: ["*foo.example.com"]\n  ports: [{number: 80, protocol: http, name: http}]\n  resolution: NONE'),
    warnings: ['spec.hosts[0]: partial wildcard "*foo.example.com" not allowed'],
  },
  {
    name: 'SE: a selector with resolution NONE warns',
    yaml: se('selector-none', '  hosts: [google.com]\n  ports: [{number: 80, protocol: http, name: http}]\n  workloadSelector: {labels: {app: a}}'),
    warnings: ['spec.workloadSelector: workloadSelector should not be set when resolution mode is NONE'],
  },
  {
    name: 'SE: a selector without labels warns',
    yaml: se('selector-empty', '  hosts: [google.com]\n  ports: [{number: 80, protocol: http, name: http}]\n  resolution: STATIC\n  workloadSelector: {}'),
    warnings: ['service entry: workload selector specified without labels, will be applied to all services in namespace'],
  },
  {
    name: 'SE: a CIDR with resolution NONE',
    yaml: se(
      'cidr',
      '  hosts: [google.com]\n  addresses: [172.1.2.16/16]\n  ports: [{number: 80, protocol: http, name: http}, {number: 8080, name: http-valid2}]\n  resolution: NONE',
    ),
  },
  {
    name: 'SE: a bad CIDR',
    yaml: se('bad-cidr', '  hosts: [google.com]\n  addresses: [1.2.3.4/99]\n  ports: [{number: 80, protocol: http, name: http}]\n  resolution: STATIC'),
    errors: ['spec.addresses[0]: 1.2.3.4/99 is not a valid CIDR block'],
  },
  { name: 'SE: DYNAMIC_DNS', yaml: se('dynamic', '  hosts: ["*.example.com"]\n  ports: [{number: 443, protocol: TLS, name: tls}]\n  resolution: DYNAMIC_DNS') },
  {
    name: 'SE: DYNAMIC_DNS on TCP with an FQDN host',
    yaml: se('dynamic-bad', '  hosts: [example.com]\n  ports: [{number: 5432, protocol: TCP, name: tcp}]\n  resolution: DYNAMIC_DNS'),
    errors: [
      'spec.hosts[0]: host must be wildcarded for resolution mode DYNAMIC_DNS',
      'spec.ports[0].protocol: only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type DYNAMIC_DNS',
    ],
  },
  {
    name: 'SE: exportTo nobody',
    yaml: se('export-none', '  hosts: [google.com]\n  ports: [{number: 80, protocol: http, name: http}]\n  resolution: DNS\n  exportTo: ["~"]'),
  },
  {
    name: 'SE: exportTo nobody and someone',
    yaml: se('export-none-some', '  hosts: [google.com]\n  ports: [{number: 80, protocol: http, name: http}]\n  resolution: DNS\n  exportTo: ["~", web]'),
    errors: ['spec.exportTo: cannot export service entry to no one (~) and someone'],
  },
  {
    name: 'SE: an endpoint with network and no address',
    yaml: se('network', '  hosts: [google.com]\n  ports: [{number: 80, protocol: http, name: http}]\n  resolution: STATIC\n  endpoints: [{network: west}]'),
    warnings: ['spec.endpoints[0].address: address is unset with network "west"'],
  },

  // TestValidateWorkloadEntry
  { name: 'WE: an IP address', yaml: we('ip', '  address: 1.2.3.4\n  ports: {http: 8080}\n  labels: {app: a}') },
  { name: 'WE: an FQDN address', yaml: we('fqdn', '  address: vm.example.com') },
  { name: 'WE: a unix address with ports', yaml: we('unix', '  address: "unix:///sock"\n  ports: {http: 8080}'), errors: ['spec: UDS may not include ports'] },
  {
    name: 'WE: a label that is no Kubernetes label',
    yaml: we('labels', '  address: 1.2.3.4\n  labels: {"app!": a, version: "v 1"}'),
    errors: ['spec.labels: invalid tag key: "app!"', 'spec.labels: invalid tag value: "v 1"'],
  },

  // ValidateEnvoyFilter (an EnvoyFilter sidecarless reads: a local rate limit)
  {
    name: 'EnvoyFilter: a subfilter match with applyTo NETWORK_FILTER',
    yaml: envoyFilter(
      '  - applyTo: NETWORK_FILTER\n    match: {context: SIDECAR_OUTBOUND, listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager, subFilter: {name: envoy.filters.http.router}}}}}\n    patch: {operation: MERGE, value: {}}',
    ),
    errors: ['spec.configPatches[1].match.listener.filterChain.filter.subFilter: Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only'],
  },
  {
    name: 'EnvoyFilter: a patch without value',
    yaml: envoyFilter(
      '  - applyTo: HTTP_ROUTE\n    match: {context: SIDECAR_OUTBOUND, routeConfiguration: {vhost: {name: "reviews:80"}}}\n    patch: {operation: MERGE}',
    ),
    errors: ['spec.configPatches[1].patch: Envoy filter: missing patch value for non-remove operation'],
  },
  {
    name: 'EnvoyFilter: a route patch matching a cluster',
    yaml: envoyFilter(
      '  - applyTo: HTTP_ROUTE\n    match: {context: SIDECAR_OUTBOUND, cluster: {service: reviews.shop.svc.cluster.local}}\n    patch: {operation: MERGE, value: {}}',
    ),
    errors: ['spec.configPatches[1].match: Envoy filter: applyTo for http route class objects cannot have non route configuration match'],
  },
  {
    name: 'EnvoyFilter: a bad proxyVersion regex',
    yaml: envoyFilter(
      '  - applyTo: HTTP_ROUTE\n    match: {context: SIDECAR_OUTBOUND, proxy: {proxyVersion: "1\\\\.2(?=3)"}, routeConfiguration: {}}\n    patch: {operation: MERGE, value: {}}',
    ),
    errors: ['spec.configPatches[1].match.proxy.proxyVersion: Envoy filter: invalid regex for proxy version'],
  },
  {
    name: 'EnvoyFilter: a selector without labels warns',
    yaml: envoyFilter('', '  workloadSelector: {}\n'),
    warnings: ['spec.workloadSelector.labels: Envoy filter: workload selector specified without labels, will be applied to all services in namespace'],
  },

  // TestValidateSidecar
  {
    name: 'Sidecar: the usual egress',
    yaml: sidecar('egress', '  egress: [{hosts: ["./*", "istio-system/*"]}]\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}'),
  },
  {
    name: 'Sidecar: a short host name',
    yaml: sidecar('short', '  egress: [{hosts: [./reviews]}]'),
    errors: ['spec.egress[0].hosts[0]: short names (non FQDN) are not allowed'],
  },
  {
    name: 'Sidecar: a bad namespace',
    yaml: sidecar('bad-ns', '  egress: [{hosts: ["Bad_NS/*"]}]'),
    errors: ['spec.egress[0].hosts[0]: invalid namespace value "Bad_NS" in sidecar'],
  },
  {
    name: 'Sidecar: a partial wildcard host',
    yaml: sidecar('partial', '  egress: [{hosts: ["ns/foo*.com"]}]'),
    errors: [
      'spec.egress[0].hosts[0]: domain name "foo*.com" invalid (label "foo*" invalid)',
      'spec.egress[0].hosts[0]: partial wildcard "foo*.com" not allowed',
    ],
  },
  {
    name: 'Sidecar: a duplicated egress host warns',
    yaml: sidecar('dup-host', '  egress: [{hosts: ["./*", "./reviews.shop.svc.cluster.local"]}]'),
    warnings: ['spec.egress[0].hosts[1]: duplicated egress host: ./reviews.shop.svc.cluster.local'],
  },
  {
    name: 'Sidecar: */* with other hosts warns',
    yaml: sidecar('star-star', '  egress: [{hosts: ["*/*", "ns/foo.com"]}]'),
    warnings: ['spec.egress[0].hosts: `*/*` host select all resources, no other hosts can be added'],
  },
  {
    name: 'Sidecar: two catch-all egress listeners',
    yaml: sidecar('two-catch-all', '  egress: [{hosts: ["./*"]}, {hosts: ["ns/*"]}]'),
    errors: ['spec.egress[0]: sidecar: the egress listener with empty port should be the last listener in the list'],
  },
  {
    name: 'Sidecar: egress ports must be unique',
    yaml: sidecar(
      'ports',
      '  egress:\n  - {port: {number: 80, protocol: HTTP, name: http}, hosts: ["./*"]}\n  - {port: {number: 80, protocol: HTTP, name: http2}, hosts: ["./*"]}',
    ),
    errors: ['spec.egress[1].port.number: sidecar: ports on IP bound listeners must be unique'],
  },
  {
    name: 'Sidecar: port 0 without a unix socket',
    yaml: sidecar('port-0', '  egress: [{port: {number: 0, protocol: HTTP, name: uds}, hosts: ["./*"]}]'),
    errors: ['spec.egress[0].bind: sidecar: ports with 0 value must have a unix domain socket bind address'],
  },
  {
    name: 'Sidecar: an egress proxy with REGISTRY_ONLY',
    yaml: sidecar('proxy', '  outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: egress.example.com, port: {number: 443}}}'),
    errors: ['spec.outboundTrafficPolicy.egressProxy: sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode'],
  },
  {
    name: 'Sidecar: an egress proxy without port',
    yaml: sidecar('proxy-port', '  outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: egress.example.com}}'),
    errors: ['spec.outboundTrafficPolicy.egressProxy: sidecar: egress_proxy port must be non-nil'],
  },
  {
    name: 'Sidecar: an ingress default endpoint on another address',
    yaml: sidecar('ingress', '  ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: "10.0.0.1:8080"}]'),
    errors: ['spec.ingress[0].defaultEndpoint: sidecar: defaultEndpoint must be of form 127.0.0.1:<port>'],
  },
  {
    name: 'Sidecar: TLS on an HTTP ingress port',
    yaml: sidecar(
      'ingress-tls',
      '  ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:8080", tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}}]',
    ),
    errors: ['spec.ingress[0].tls: server cannot have TLS settings for non HTTPS/TLS ports'],
  },
  {
    name: 'Sidecar: MUTUAL TLS without a client CA',
    yaml: sidecar(
      'ingress-mutual',
      '  ingress: [{port: {number: 9443, protocol: HTTPS, name: https}, defaultEndpoint: "127.0.0.1:8443", tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}}]',
    ),
    errors: ['spec.ingress[0].tls: MUTUAL TLS requires a client CA bundle'],
  },

  // TestValidatePeerAuthentication
  {
    name: 'PA: port-level mTLS without ports',
    yaml: pa('empty-ports', '  selector: {matchLabels: {app: a}}\n  portLevelMtls: {}'),
    // The CRD's minProperties refuses it before Istio's rule.
    errors: ['spec.portLevelMtls: expected at least 1 entry, found 0'],
  },
  {
    name: 'PA: a selector without labels warns',
    yaml: pa('empty-selector', '  selector: {}\n  mtls: {mode: STRICT}'),
    warnings: ['spec.selector.matchLabels: workload selector specified without labels'],
  },
  {
    name: 'PA: a wildcard in the selector',
    yaml: pa('wild-selector', '  selector: {matchLabels: {app: "*"}}'),
    errors: ['spec.selector.matchLabels.app: wildcard not allowed in label value match'],
  },

  // TestValidateAuthorizationPolicy
  {
    name: 'AP: allow from a namespace',
    yaml: ap('allow', '  rules: [{from: [{source: {namespaces: [web]}}], to: [{operation: {methods: [GET], ports: ["8080"]}}]}]'),
  },
  {
    name: 'AP: CUSTOM without provider name',
    yaml: ap('custom', '  action: CUSTOM\n  rules: [{}]'),
    errors: ['spec.provider: `provider.name` must not be empty'],
  },
  {
    name: 'AP: CUSTOM with principals',
    yaml: ap(
      'custom-principals',
      '  action: CUSTOM\n  provider: {name: authz}\n  rules: [{from: [{source: {principals: [a]}}], when: [{key: "request.auth.claims[iss]", values: [x]}]}]',
    ),
    errors: [
      'spec.rules[0].from[0].source.principals: From.Principals is currently not supported with CUSTOM action',
      'spec.rules[0].when[0].key: request.auth.claims[iss] is currently not supported with CUSTOM action',
    ],
  },
  {
    name: 'AP: a provider with ALLOW',
    yaml: ap('provider', '  provider: {name: authz}\n  rules: [{}]'),
    errors: ['spec.provider: `provider` must not be with non CUSTOM action, found ALLOW'],
  },
  {
    name: 'AP: from without source',
    yaml: ap('no-source', '  rules: [{from: [{}]}]'),
    errors: ['spec.rules[0].from[0]: `from.source` must not be nil, found at rule 0'],
  },
  {
    name: 'AP: an empty operation',
    yaml: ap('empty-op', '  rules: [{to: [{operation: {}}]}]'),
    errors: ['spec.rules[0].to[0].operation: `to.operation` must not be empty, found at rule 0'],
  },
  {
    name: 'AP: bad IP blocks and ports',
    yaml: ap('ips', '  rules: [{from: [{source: {ipBlocks: [1.2.3.4/40, 300.1.1.1]}}], to: [{operation: {ports: [abc]}}]}]'),
    errors: [
      'spec.rules[0].from[0].source.ipBlocks: bad CIDR range (1.2.3.4/40)',
      'spec.rules[0].from[0].source.ipBlocks: bad IP address (300.1.1.1)',
      'spec.rules[0].to[0].operation.ports: bad port (abc)',
    ],
  },
  {
    name: 'AP: an empty value',
    yaml: ap('empty-value', '  rules: [{to: [{operation: {methods: [""]}}]}]'),
    errors: ['spec.rules[0].to[0].operation.methods: empty value not allowed, found in Methods'],
  },
  {
    name: 'AP: an unknown condition key',
    yaml: ap('when', '  rules: [{when: [{key: foo.bar, values: [x]}]}]'),
    errors: [
      'spec.rules[0].when[0].values: invalid `value` for `key` foo.bar: unknown attribute: foo.bar',
      'spec.rules[0].when[0].notValues: invalid `notValue` for `key` foo.bar: unknown attribute: foo.bar',
    ],
  },
  {
    name: 'AP: a condition without values',
    yaml: ap('when-empty', '  rules: [{when: [{key: source.ip}]}]'),
    errors: ['spec.rules[0].when[0]: at least one of `values` or `notValues` must be set for key source.ip'],
  },
  {
    name: 'AP: a condition on destination.namespace',
    yaml: ap('when-ns', '  rules: [{when: [{key: destination.namespace, values: [x]}]}]'),
    errors: [
      'spec.rules[0].when[0].values: invalid `value` for `key` destination.namespace: attribute destination.namespace is replaced by the metadata.namespace',
      'spec.rules[0].when[0].notValues: invalid `notValue` for `key` destination.namespace',
    ],
  },
  {
    name: 'AP: a service account with two slashes',
    yaml: ap('sa', '  rules: [{from: [{source: {serviceAccounts: [a/b/c]}}]}]'),
    errors: [
      "spec.rules[0].from[0].source.serviceAccounts: expected format 'serviceAccount' or 'namespace/serviceAccount', found \"a/b/c\" in ServiceAccounts",
    ],
  },
  {
    name: 'AP: {**} before the end of a path',
    yaml: ap('path', '  rules: [{to: [{operation: {paths: ["/foo/{**}/bar/{*}"]}}]}]'),
    errors: ['spec.rules[0].to[0].operation.paths: invalid or unsupported path foo/{**}/bar/{*}, found in Paths. {**} is not the last operator'],
  },
  {
    name: 'AP: a DENY rule with only HTTP attributes warns',
    yaml: ap('deny-http', '  action: DENY\n  rules: [{to: [{operation: {methods: [POST]}}]}]'),
    warnings: [
      'spec.rules[0]: configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule',
    ],
  },
  {
    name: 'AP: the dry-run annotation with a bad value',
    yaml: ap('dry-run', '  rules: [{}]', ', annotations: {istio.io/dry-run: "maybe"}'),
    errors: ['metadata.annotations.istio.io/dry-run: shop/dry-run has annotation istio.io/dry-run with invalid value (maybe)'],
  },
  { name: 'AP: the dry-run annotation', yaml: ap('dry-run-ok', '  rules: [{}]', ', annotations: {istio.io/dry-run: "true"}') },
  {
    name: 'VS: the dry-run annotation',
    yaml: `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: dry, namespace: shop, annotations: {istio.io/dry-run: "true"}}\nspec:\n  hosts: [reviews]\n  http: [{${TO_REVIEWS}}]`,
    errors: ['metadata.annotations.istio.io/dry-run: shop/dry has unsupported annotation istio.io/dry-run, please remove the annotation'],
  },
  {
    name: 'an internal annotation',
    yaml: `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: internal, namespace: shop, annotations: {internal.istio.io/parents: x}}\nspec:\n  host: reviews`,
    errors: ['metadata.annotations.internal.istio.io/parents: "internal.istio.io/parents" annotation found, this may not be set by users'],
  },
];

describe('Istio rules the CRD schema cannot express', () => {
  it.each(handWritten.map((c) => [c.name, c] as const))('%s', (_, c) => check(c));
});

describe("Istio's own validation test cases", () => {
  it.each(fromIstioTests.map((c) => [c.name, c] as const))('%s', (_, c) => check(c));
});

import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/issue.js';
import { errors, summarize, validateYaml, warnings } from './helpers.js';

/** A VirtualService for reviews whose single http route is `route` (YAML, indented 4). */
function reviewsRoute(route: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
${route}`;
}

describe('schema errors name the field, what was expected and what was found', () => {
  it('unknown field, with the closest sibling suggested', () => {
    const result = validateYaml(
      reviewsRoute(`  - retires:
      attempts: 3
    route:
    - destination:
        host: reviews
`),
    );
    expect(result.resource).toBeUndefined();
    expect(errors(result)).toEqual([
      {
        severity: 'error',
        code: 'unknown-field',
        message: "unknown field 'retires'; did you mean 'retries'?",
        resource: { kind: 'VirtualService', namespace: 'bookinfo', name: 'reviews' },
        path: 'spec.http[0].retires',
        location: { file: 'test.yaml', line: 10, column: 5 },
      },
    ]);
    expect(formatIssue(errors(result)[0]!)).toBe(
      "error: test.yaml:10: VirtualService bookinfo/reviews: spec.http[0].retires: unknown field 'retires'; did you mean 'retries'?",
    );
  });

  it('unknown nested field, misspelled or in the proto spelling', () => {
    const result = validateYaml(
      reviewsRoute(`  - retries:
      attempts: 3
      perTryTimout: 2s
      retry_on: 5xx
    route:
    - destination:
        host: reviews
`),
    );
    expect(summarize(errors(result))).toEqual([
      "error unknown-field spec.http[0].retries.perTryTimout: unknown field 'perTryTimout'; did you mean 'perTryTimeout'?",
      "error unknown-field spec.http[0].retries.retry_on: unknown field 'retry_on'; did you mean 'retryOn'?",
    ]);
    expect(errors(result)[0]?.location?.line).toBe(12);
  });

  it('unknown field with no close match lists the fields expected', () => {
    const result = validateYaml(
      reviewsRoute(`  - route:
    - destination:
        host: reviews
        version: v2
`),
    );
    expect(summarize(errors(result))).toEqual([
      "error unknown-field spec.http[0].route[0].destination.version: unknown field 'version'; expected one of host, port, subset",
    ]);
  });

  it('wrong type', () => {
    const result = validateYaml(
      reviewsRoute(`  - route:
    - destination:
        host: reviews
        port:
          number: "9080"
      weight: 1.5
    - destination: reviews
`),
    );
    expect(summarize(errors(result))).toEqual([
      'error type spec.http[0].route[0].destination.port.number: expected an integer, found a string "9080"',
      'error type spec.http[0].route[0].weight: expected an integer, found a number 1.5',
      'error type spec.http[0].route[1].destination: expected an object, found a string "reviews"',
    ]);
  });

  it('a list where an object is expected, and the reverse', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: reviews
  http:
    route: []
`);
    expect(summarize(errors(result))).toEqual([
      'error type spec.hosts: expected a list, found a string "reviews"',
      'error type spec.http: expected a list, found an object',
    ]);
  });

  it('bad enum value, with a suggestion', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBBIN
`);
    expect(summarize(errors(result))).toEqual([
      'error enum spec.trafficPolicy.loadBalancer.simple: expected one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST, found "ROUND_ROBBIN"; did you mean \'ROUND_ROBIN\'?',
    ]);
  });

  it('missing required field, located at its parent', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  subsets:
  - name: v1
    labels: {version: v1}
`);
    expect(errors(result)).toMatchObject([{ code: 'required', path: 'spec.host', message: "missing required field 'host'", location: { line: 4 } }]);
    const route = validateYaml(reviewsRoute(`  - route:\n    - weight: 100\n`));
    expect(summarize(errors(route))).toEqual(["error required spec.http[0].route[0].destination: missing required field 'destination'"]);
  });

  it('out of range numbers and sizes', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: []
  ports:
  - number: 70000
    name: http
  - number: -1
    name: grpc
  resolution: DNS
`);
    expect(summarize(errors(result))).toEqual([
      'error range spec.hosts: expected at least 1 item, found 0',
      'error rule spec.ports[0].number: port must be between 1-65535 (found 70000)',
      'error range spec.ports[1].number: expected an integer from 0 to 4294967295, found -1',
      'error rule spec.ports[1].number: port must be between 1-65535 (found -1)',
    ]);
  });

  it('bad durations', () => {
    const result = validateYaml(
      reviewsRoute(`  - timeout: 10 seconds
    retries:
      attempts: 3
      perTryTimeout: 500us
    route:
    - destination:
        host: reviews
`),
    );
    expect(summarize(errors(result))).toEqual([
      'error duration spec.http[0].timeout: expected a duration such as "1.5s", "100ms" or "1h30m" (units h, m, s, ms, us, ns), found "10 seconds"',
      'error rule spec.http[0].retries.perTryTimeout: must be a valid duration greater than 1ms (found "500us")',
    ]);
  });

  it('a duration field without a CEL rule still needs a duration', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        idleTimeout: 1 hour
`);
    expect(summarize(errors(result))).toEqual([
      'error duration spec.trafficPolicy.connectionPool.tcp.idleTimeout: expected a duration such as "1.5s", "100ms" or "1h30m" (units h, m, s, ms, us, ns), found "1 hour"',
    ]);
  });

  it('regexes RE2 rejects: lookaround and backreferences', () => {
    const result = validateYaml(
      reviewsRoute(`  - match:
    - uri:
        regex: "/reviews/(?=v2)"
      headers:
        cookie:
          regex: "(a)\\\\1"
    rewrite:
      uriRegexRewrite:
        match: "^/reviews/(?<!x)"
        rewrite: /v2/
    route:
    - destination:
        host: reviews
`),
    );
    expect(summarize(errors(result))).toEqual([
      'error regex spec.http[0].match[0].uri.regex: expected an RE2 regular expression, found "/reviews/(?=v2)": invalid or unsupported Perl syntax: `(?=`',
      'error regex spec.http[0].match[0].headers.cookie.regex: expected an RE2 regular expression, found "(a)\\\\1": invalid escape sequence: `\\1`',
      'error regex spec.http[0].rewrite.uriRegexRewrite.match: expected an RE2 regular expression, found "^/reviews/(?<!x)": invalid named capture: `(?<!x)`',
    ]);
    expect(errors(result)[1]?.location?.line).toBe(15);
  });

  it('violated CEL rules give the rule message', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: ["*"]
  ports:
  - {number: 9080, name: http}
  - {number: 9080, name: http-alt}
  resolution: NONE
  endpoints:
  - address: 127.0.0.2
  workloadSelector:
    labels: {app: ratings}
`);
    expect(summarize(errors(result))).toEqual([
      'error rule spec.hosts[0]: hostname cannot be wildcard (found "*")',
      'error rule spec.ports: port number cannot be duplicated (found 9080 more than once)',
      "error rule spec: only one of WorkloadSelector or Endpoints can be set (found 'workloadSelector' and 'endpoints')",
      'error rule spec: NONE mode cannot set endpoints',
    ]);
  });

  it('mutually exclusive fields', () => {
    const result = validateYaml(
      reviewsRoute(`  - match:
    - uri:
        exact: /reviews
        prefix: /reviews/
    fault:
      abort:
        httpStatus: 503
        grpcStatus: UNAVAILABLE
    route:
    - destination:
        host: reviews
`),
    );
    expect(summarize(errors(result))).toEqual([
      "error one-of spec.http[0].match[0].uri: only one of 'exact', 'prefix' or 'regex' may be set, found 'exact' and 'prefix'",
      "error one-of spec.http[0].fault.abort: only one of 'httpStatus', 'grpcStatus' or 'http2Error' may be set, found 'httpStatus' and 'grpcStatus'",
    ]);
    expect(summarize(warnings(result))).toEqual([]);
  });

  it('reports every error of a document, and no resource', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: 42
  subsets:
  - name: v1
    labels: {version: 1}
  - nmae: v2
`);
    expect(result.resource).toBeUndefined();
    expect(summarize(errors(result))).toEqual([
      'error type spec.host: expected a string, found a number 42',
      'error type spec.subsets[0].labels.version: expected a string, found a number 1',
      "error unknown-field spec.subsets[1].nmae: unknown field 'nmae'; did you mean 'name'?",
      "error required spec.subsets[1].name: missing required field 'name'",
    ]);
  });
});

describe('fields sidecarless does not implement are reported, never silently ignored', () => {
  it('a not-yet field gives a not-implemented warning naming it, and the resource is kept', () => {
    const result = validateYaml(
      reviewsRoute(`  - timeout: 10s
    match:
    - uri: { prefix: /v1 }
      statPrefix: reviews-v1
    route:
    - destination:
        host: reviews
`),
    );
    expect(result.resource).toBeDefined();
    // `timeout` is implemented; `statPrefix` is not yet.
    expect(warnings(result)).toMatchObject([{ code: 'not-implemented', path: 'spec.http[0].match[0].statPrefix', location: { line: 13 } }]);
    expect(warnings(result)[0]?.message).toBe("'statPrefix' is not implemented yet and has no effect: metrics carry no per-route stat prefix yet");
  });

  it('a not-applicable field or value gives a not-applicable warning with the reason', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  gateways: [mesh, istio-system/bookinfo-gateway]
  tcp:
  - route:
    - destination: {host: reviews}
`);
    expect(summarize(warnings(result))).toEqual([
      "warning not-applicable spec.gateways[1]: \"istio-system/bookinfo-gateway\" in 'gateways' does not apply to an in-process mesh and is ignored: only the reserved gateway 'mesh' (every sidecar) applies in-process; routes bound to an Istio Gateway run on that gateway's proxy",
      "warning not-applicable spec.tcp: 'tcp' does not apply to an in-process mesh and is ignored: routes opaque TCP connections; sidecarless sees only the calls made through its own API (mesh.fetch, mesh.request, mesh.dispatcher); it captures no traffic and binds no listener",
    ]);
  });

  it('a more specific status under a not-yet field is reported too', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  egress:
  - hosts: ["./*"]
    port: {number: 9080, protocol: HTTP, name: http}
    captureMode: NONE
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy:
      host: egress.example.com
`);
    expect(summarize(warnings(result)).map((w) => w.slice(0, w.indexOf(':')))).toEqual([
      'warning not-implemented spec.egress[0].port',
      'warning not-applicable spec.egress[0].captureMode',
      'warning not-applicable spec.outboundTrafficPolicy.egressProxy',
    ]);
  });
});

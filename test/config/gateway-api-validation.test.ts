// HTTPRoute and GRPCRoute validation: the Gateway API CRDs' schema and CEL rules, each problem
// named with its field path; parents that do not apply in-process reported as warnings.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { GATEWAY_ROUTE_KINDS } from '../../src/config/resource.js';
import type { SchemaNode } from '../../src/config/schema/index.js';
import { GATEWAY_ROUTE_SCHEMAS } from '../../src/config/schema/index.js';
import { CEL_RULES } from '../../src/config/validate/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { errors, summarize, validateYaml, warnings } from './helpers.js';

const httpRoute = (
  rules: string,
  parents = '[{ group: "", kind: Service, name: reviews }]',
  apiVersion = 'gateway.networking.k8s.io/v1',
) => `apiVersion: ${apiVersion}
kind: HTTPRoute
metadata: { name: reviews, namespace: shop }
spec:
  parentRefs: ${parents}
  rules:
${rules}`;

const errorLines = (yaml: string) => errors(validateYaml(yaml)).map((i) => `${i.path}: ${i.message}`);

describe('HTTPRoute validation', () => {
  it('accepts a GAMMA route in v1 and v1beta1, and reads it', () => {
    for (const version of ['v1', 'v1beta1']) {
      const result = validateYaml(
        httpRoute(
          '  - backendRefs: [{ name: reviews-v1, port: 9080, weight: 90 }, { name: reviews-v2, port: 9080, weight: 10 }]\n',
          undefined,
          `gateway.networking.k8s.io/${version}`,
        ),
      );
      expect(summarize(result.issues)).toEqual([]);
      expect(result.resource?.kind).toBe('HTTPRoute');
    }
  });

  it('rejects an unserved version, naming the served ones', () => {
    expect(errorLines(httpRoute('  - backendRefs: []\n', undefined, 'gateway.networking.k8s.io/v1alpha1'))).toEqual([
      'apiVersion: HTTPRoute is served as gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1; found apiVersion "gateway.networking.k8s.io/v1alpha1"',
    ]);
  });

  it('names the field path of each error', () => {
    expect(
      errorLines(
        httpRoute(`  - matches:
    - path: { type: Prefix, value: /api }
    - path: { value: api }
    - path: { type: RegularExpression, value: "([a-z" }
      headers: [{ name: x-a, value: "1" }, { name: x-a, value: "2" }, { name: X-A, value: "3" }]
      method: FETCH
    filters:
    - type: RequestHeaderModifier
      responseHeaderModifier: { set: [{ name: x, value: y }] }
    timeouts: { request: 1s, backendRequest: 2s }
    backendRefs:
    - { name: reviews-v1 }
    - { name: reviews-v2, port: 9080, weight: -1 }
    - { kind: Pod, name: reviews-v3, port: 9080 }
    bogus: true
`),
      ),
    ).toEqual([
      // The CRD schema and its CEL rules (messages as the CRD words them), in document order...
      'spec.rules[0].matches[0].path.type: expected one of Exact, PathPrefix, RegularExpression, found "Prefix"',
      "spec.rules[0].matches[1].path.value: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix'] (found \"api\")",
      'spec.rules[0].matches[2].headers[1]: expected each entry to have a distinct \'name\', found name "x-a" again',
      'spec.rules[0].matches[2].method: expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, found "FETCH"',
      'spec.rules[0].filters[0].requestHeaderModifier: filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type',
      'spec.rules[0].filters[0].responseHeaderModifier: filter.responseHeaderModifier must be nil if the filter.type is not ResponseHeaderModifier (found type "RequestHeaderModifier")',
      'spec.rules[0].timeouts.backendRequest: backendRequest timeout cannot be longer than request timeout (found request "1s", backendRequest "2s")',
      'spec.rules[0].backendRefs[0].port: Must have port for Service reference',
      'spec.rules[0].backendRefs[1].weight: expected an integer from 0 to 1000000, found -1',
      "spec.rules[0].bogus: unknown field 'bogus'; expected one of backendRefs, filters, matches, name, retry, sessionPersistence, timeouts",
      // ...then what the schema cannot say: RE2 syntax, backends sidecarless cannot route to.
      expect.stringMatching(/^spec\.rules\[0\]\.matches\[2\]\.path\.value: expected an RE2 regular expression/),
      'spec.rules[0].backendRefs[2].kind: expected a backend of kind Service (group ""), found kind "Pod" of group ""; sidecarless routes to Kubernetes Services only',
    ]);
  });

  it("enforces the CRD's rules on filters", () => {
    expect(
      errorLines(
        httpRoute(`  - matches: [{ path: { type: Exact, value: /a } }]
    filters:
    - { type: RequestRedirect, requestRedirect: { statusCode: 304, path: { type: ReplacePrefixMatch, replacePrefixMatch: /b } } }
    - { type: URLRewrite, urlRewrite: { path: { type: ReplaceFullPath } } }
    - { type: ExtensionRef, extensionRef: { group: example.com, kind: Plugin, name: p } }
    - { type: RequestMirror, requestMirror: { backendRef: { name: m, port: 80 }, percent: 10, fraction: { numerator: 1 } } }
    backendRefs: [{ name: reviews-v1, port: 9080 }]
  - timeouts: { request: 10 }
    retry: { attempts: -1, codes: [200], backoff: soon }
    backendRefs: [{ name: reviews-v1, port: 9080 }]
`),
      ),
    ).toEqual([
      'spec.rules[0].filters[0].requestRedirect.statusCode: expected one of 301, 302, 303, 307, 308, found 304',
      "spec.rules[0].filters[1].urlRewrite.path.replaceFullPath: replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
      'spec.rules[0].filters[3].requestMirror: Only one of percent or fraction may be specified in HTTPRequestMirrorFilter',
      'spec.rules[0].filters: May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both (found both a RequestRedirect and a URLRewrite filter)',
      'spec.rules[0].backendRefs: RequestRedirect filter must not be used together with backendRefs',
      'spec.rules[0].matches: When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified (found 1 match (Exact))',
      'spec.rules[1].timeouts.request: expected a string, found a number 10',
      // v1.6.1's experimental-channel CRD: attempts is at least 1.
      'spec.rules[1].retry.attempts: expected an integer of at least 1, found -1',
      'spec.rules[1].retry.codes[0]: expected an integer from 400 to 599, found 200',
      'spec.rules[1].retry.backoff: expected a duration such as "10s", "500ms" or "1m30s" (units h, m, s, ms; at most 5 digits each), matching ^([0-9]{1,5}(h|m|s|ms)){1,4}$, found "soon"',
      'spec.rules[0].filters[2].type: an ExtensionRef filter names an implementation-specific resource; sidecarless implements none; rather than route without it, the route is refused',
    ]);
  });

  it('warns, without rejecting, about parents that do not apply in-process and fields not read', () => {
    const result = validateYaml(
      httpRoute(
        `  - backendRefs: [{ name: reviews-v1, port: 9080 }]
    sessionPersistence: { sessionName: s }
    filters: [{ type: CORS, cors: { allowOrigins: ["https://shop.example.com"] } }]
`,
        '[{ name: shop-gateway }, { group: "", kind: Service, name: reviews, sectionName: http }, { group: networking.istio.io, kind: ServiceEntry, name: api }]',
      ).replace('spec:\n', 'spec:\n  hostnames: [reviews.example.com]\n  useDefaultGateways: All\n'),
    );
    expect(errors(result)).toEqual([]);
    expect(result.resource?.kind).toBe('HTTPRoute');
    expect(warnings(result).map((w) => `${w.code} ${w.path}`)).toEqual([
      'not-applicable spec.parentRefs[0]',
      'not-implemented spec.parentRefs[1].sectionName',
      'not-implemented spec.parentRefs[2]',
      'ignored spec.hostnames',
      'not-applicable spec.useDefaultGateways',
      'not-applicable spec.rules[0].filters[0].cors',
      'not-implemented spec.rules[0].sessionPersistence',
    ]);
    expect(warnings(result)[0]!.message).toMatch(/Gateway parent .* does not apply in-process and is skipped \(not applicable\)/);
  });

  it('a bad route is refused with the resource and field named; the mesh does not start half-configured', async () => {
    await expect(meshFromYaml(httpRoute('  - backendRefs: [{ name: reviews-v1 }]\n'), { namespace: 'shop' })).rejects.toThrow(
      /HTTPRoute shop\/reviews: spec\.rules\[0\]\.backendRefs\[0\]\.port: Must have port for Service reference/,
    );
  });
});

describe('GRPCRoute validation', () => {
  const grpcRoute = (match: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: reviews, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews }]
  rules:
  - matches: [${match}]
    backendRefs: [{ name: reviews-v1, port: 9080 }]
`;
  it('checks service and method names, and that one of them is given', () => {
    expect(errorLines(grpcRoute('{ method: { service: shop.Reviews, method: Get } }'))).toEqual([]);
    expect(errorLines(grpcRoute('{ method: { service: "shop/Reviews", method: "Get-1" } }, { method: {} }, { path: { value: / } }'))).toEqual([
      'spec.rules[0].matches[0].method.service: service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$) (found "shop/Reviews"; a gRPC service name is such as "helloworld.Greeter")',
      'spec.rules[0].matches[0].method.method: method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$) (found "Get-1"; a gRPC method name is such as "SayHello")',
      "spec.rules[0].matches[1].method: One or both of 'service' or 'method' must be specified",
      "spec.rules[0].matches[2].path: unknown field 'path'; expected one of headers, method",
    ]);
  });

  it('is served as v1 only', () => {
    expect(errorLines(grpcRoute('{ method: { service: a } }').replace('/v1\n', '/v1alpha2\n'))).toEqual([
      'apiVersion: GRPCRoute is served as gateway.networking.k8s.io/v1; found apiVersion "gateway.networking.k8s.io/v1alpha2"',
    ]);
  });
});

describe('sidecarless validate and explain', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecarless-gateway-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function run(...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  }

  it('validate reports an HTTPRoute error with file, resource and field path', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, httpRoute('  - matches: [{ path: { type: Exact, value: "/a//b" } }]\n    backendRefs: [{ name: reviews-v1, port: 9080 }]\n'));
    const r = await run('validate', file);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(
      /bad\.yaml:7: HTTPRoute shop\/reviews.*spec\.rules\[0\]\.matches\[0\]\.path\.value: must not contain '\/\/' when type one of \['Exact', 'PathPrefix'\] \(found "\/a\/\/b"\)/,
    );
  });

  it('explain names the HTTPRoute and the rule that matches', async () => {
    const file = join(dir, 'good.yaml');
    await writeFile(
      file,
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local, reviews-v2.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.9 }]
---
` +
        httpRoute(`  - matches: [{ path: { value: /v2 } }]
    backendRefs: [{ name: reviews-v2, port: 9080 }]
    timeouts: { request: 3s }
`),
    );
    const v = await run('validate', file);
    expect(v.code).toBe(0);
    const r = await run('explain', '-c', file, '-n', 'shop', 'GET', 'http://reviews:9080/v2/x');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('VirtualService:  HTTPRoute shop/reviews');
    expect(r.stdout).toContain('spec.rules[0].matches[0] "shop.reviews.0" of HTTPRoute shop/reviews');
    expect(r.stdout).toContain('path prefix "/v2"');
    expect(r.stdout).toContain('100.0%  reviews-v2.shop.svc.cluster.local:9080');
    expect(r.stdout).toContain('timeout:         3s');
  });
});

describe('rules the Gateway API CRDs enforce, now read from them', () => {
  it('parentRefs: the same parent twice needs distinct sectionNames or ports', () => {
    expect(
      errorLines(
        httpRoute(
          '  - backendRefs: [{ name: reviews-v1, port: 9080 }]\n',
          '[{ group: "", kind: Service, name: reviews }, { group: "", kind: Service, name: reviews, port: 9080 }, { group: "", kind: Service, name: reviews, port: 9080 }]',
        ),
      ),
    ).toEqual([
      'spec.parentRefs: sectionName or port must be specified when parentRefs includes 2 or more references to the same parent (found Service "reviews" more than once)',
      'spec.parentRefs: sectionName or port must be unique when parentRefs includes 2 or more references to the same parent (found Service "reviews" more than once)',
    ]);
  });

  it('rule names, path values, and the total number of matches', () => {
    const many = Array.from({ length: 50 }, (_, i) => `{ path: { value: /m${i} } }`).join(', ');
    expect(
      errorLines(
        httpRoute(`  - name: a
    matches: [{ path: { value: /a/.. } }, { path: { type: Exact, value: /a%2fb } }, { path: { value: "/a b" } }, { path: { value: "/a#b" } }]
    backendRefs: [{ name: reviews-v1, port: 9080 }]
  - name: a
    matches: [${many}]
  - matches: [${many}]
  - matches: [${many}]
`),
      ),
    ).toEqual([
      "spec.rules[0].matches[0].path.value: must not end with '/..' when type one of ['Exact', 'PathPrefix'] (found \"/a/..\")",
      "spec.rules[0].matches[1].path.value: must not contain '%2f' when type one of ['Exact', 'PathPrefix'] (found \"/a%2fb\")",
      "spec.rules[0].matches[2].path.value: must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix'] (found \"/a b\")",
      "spec.rules[0].matches[3].path.value: must not contain '#' when type one of ['Exact', 'PathPrefix'] (found \"/a#b\")",
      "spec.rules[0].matches[3].path.value: must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix'] (found \"/a#b\")",
      'spec.rules: While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128 (found 154)',
      'spec.rules: Rule name must be unique within the route (found "a" more than once)',
    ]);
  });

  it('filters: repeated within a backendRef, CORS wildcards, mirror fractions, list sizes', () => {
    const seventeen = Array.from({ length: 17 }, (_, i) => `h${i}.example.com`).join(', ');
    expect(
      errorLines(
        httpRoute(`  - filters:
    - { type: CORS, cors: { allowMethods: ["*", GET], allowOrigins: ["https://a.example.com"] } }
    - { type: RequestMirror, requestMirror: { backendRef: { name: m, port: 80 }, fraction: { numerator: 5, denominator: 2 } } }
    - { type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: "bad header", value: x }], remove: [x-a, x-a], bogus: 1 } }
    backendRefs:
    - name: reviews-v1
      port: 9080
      filters:
      - { type: ResponseHeaderModifier, responseHeaderModifier: { remove: [x] } }
      - { type: ResponseHeaderModifier, responseHeaderModifier: { remove: [y] } }
`).replace('spec:\n', `spec:\n  hostnames: [${seventeen}, Shop.Example.com]\n`),
      ),
    ).toEqual([
      'spec.hostnames: expected at most 16 items, found 18',
      'spec.hostnames[17]: expected a hostname such as "shop.example.com" or "*.example.com", matching ^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$, found "Shop.Example.com"',
      'spec.rules[0].filters[0].cors.allowMethods: AllowMethods cannot contain \'*\' alongside other methods (found "*", "GET")',
      'spec.rules[0].filters[1].requestMirror.fraction.numerator: numerator must be less than or equal to denominator (found 5/2)',
      'spec.rules[0].filters[2].requestHeaderModifier.set[0].name: expected an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~), matching ^[A-Za-z0-9!#$%&\'*+\\-.^_\\x60|~]+$, found "bad header"',
      'spec.rules[0].filters[2].requestHeaderModifier.remove[1]: expected each value once (the list is a set), found "x-a" again',
      "spec.rules[0].filters[2].requestHeaderModifier.bogus: unknown field 'bogus'; expected one of add, remove, set",
      'spec.rules[0].backendRefs[0].filters: ResponseHeaderModifier filter cannot be repeated (found 2)',
    ]);
  });

  it('sessionPersistence and ExternalAuth: the CRD rules, then the refusal of what sidecarless does not implement', () => {
    expect(
      errorLines(
        httpRoute(`  - filters: [{ type: ExternalAuth, externalAuth: { protocol: GRPC, backendRef: { name: authz, port: 9000 } } }]
    sessionPersistence: { type: Header, cookieConfig: { lifetimeType: Permanent } }
    backendRefs: [{ name: reviews-v1, port: 9080 }]
`),
      ),
    ).toEqual([
      "spec.rules[0].filters[0].externalAuth.grpc: grpc must be specified when protocol is set to 'GRPC'",
      'spec.rules[0].sessionPersistence.absoluteTimeout: AbsoluteTimeout must be specified when cookie lifetimeType is Permanent',
      'spec.rules[0].sessionPersistence.cookieConfig: cookieConfig can only be set with type Cookie (found type "Header")',
      'spec.rules[0].filters[0].type: the ExternalAuth filter is not implemented (use an AuthorizationPolicy with a CUSTOM action provider); rather than route without it, the route is refused',
    ]);
  });
});

describe('every CEL rule of the Gateway API CRDs', () => {
  // Routes that break, between them, every rule the CRDs carry; the test fails when a rule's
  // message never shows, so a rule that stopped being enforced (or a new CRD rule) is caught.
  const many = (n: number) => Array.from({ length: n }, (_, i) => `{ path: { value: /m${i} } }`).join(', ');
  const grpcMany = (n: number) => Array.from({ length: n }, (_, i) => `{ method: { service: s${i} } }`).join(', ');
  const backend = '{ name: b, port: 80 }';
  const http = [
    httpRoute(
      `  - matches: [{ path: { value: "/a//b" } }, { path: { value: /a/./b } }, { path: { value: /a/../b } }, { path: { value: /a%2Fb } }, { path: { value: /a/. } }, { path: { value: /a%2fb } }, { path: { value: /a/.. } }, { path: { value: "/a#b" } }, { path: { value: "/a b" } }, { path: { value: a } }]
    backendRefs: [${backend}]
  - matches: [{ path: { type: Exact, value: /x } }]
    filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /y } } }]
    backendRefs:
    - { name: b1, port: 80, filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /y } } }] }
    - { name: b2, port: 80, filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /y } } }] }
  - matches: [{ path: { type: Exact, value: /x } }]
    filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /y } } }]
    backendRefs: [${backend}, { name: no-port }]
  - filters:
    - { type: CORS }
    - { type: RequestHeaderModifier }
    - { type: ResponseHeaderModifier }
    - { type: RequestMirror }
    - { type: RequestRedirect }
    - { type: URLRewrite }
    - { type: ExtensionRef }
    - { type: ExternalAuth }
    - { type: RequestMirror, requestMirror: { backendRef: ${backend} }, cors: {}, requestHeaderModifier: {}, responseHeaderModifier: {}, requestRedirect: {}, urlRewrite: {}, extensionRef: { group: "", kind: K, name: n }, externalAuth: { protocol: HTTP, http: {}, backendRef: ${backend} } }
    - { type: CORS, cors: {}, requestMirror: { backendRef: ${backend} } }
  - filters:
    - { type: URLRewrite, urlRewrite: { path: { type: ReplaceFullPath } } }
    - { type: RequestRedirect, requestRedirect: { path: { type: ReplacePrefixMatch } } }
    - { type: URLRewrite, urlRewrite: {} }
    - { type: RequestRedirect, requestRedirect: {} }
    - { type: RequestHeaderModifier, requestHeaderModifier: {} }
    - { type: RequestHeaderModifier, requestHeaderModifier: {} }
    - { type: ResponseHeaderModifier, responseHeaderModifier: {} }
    - { type: ResponseHeaderModifier, responseHeaderModifier: {} }
  - filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replaceFullPath: /x } } }]
  - filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplaceFullPath, replacePrefixMatch: /x } } }]
  - filters:
    - { type: RequestMirror, requestMirror: { backendRef: { name: m }, percent: 5, fraction: { numerator: 3, denominator: 2 } } }
    - { type: CORS, cors: { allowHeaders: ["*", a], allowMethods: ["*", GET], allowOrigins: ["*", "https://a.example.com"] } }
    - { type: ExternalAuth, externalAuth: { protocol: HTTP, grpc: {}, backendRef: ${backend} } }
    - { type: ExternalAuth, externalAuth: { protocol: GRPC, http: {}, backendRef: ${backend} } }
    timeouts: { request: 1s, backendRequest: 2s }
    sessionPersistence: { type: Header, cookieConfig: { lifetimeType: Permanent } }
`,
      '[{ group: "", kind: Service, name: reviews }, { group: "", kind: Service, name: reviews, port: 80 }, { group: "", kind: Service, name: reviews, port: 80 }]',
    ),
    httpRoute(`  - { name: a, matches: [${many(60)}] }
  - { name: a, matches: [${many(60)}] }
  - { matches: [${many(60)}] }
`),
  ];
  const grpc = (rules: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: greeter, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: greeter }, { group: "", kind: Service, name: greeter, sectionName: grpc }, { group: "", kind: Service, name: greeter, sectionName: grpc }]
  rules:
${rules}`;
  const grpcRoutes = [
    grpc(`  - name: a
    matches: [{ method: {} }, { method: { service: "a/b", method: "c-d" } }, ${grpcMany(50)}]
    backendRefs: [{ name: no-port }]
  - { name: a, matches: [${grpcMany(50)}] }
  - { matches: [${grpcMany(50)}] }
`),
  ];

  it('each rule is enforced, with its message', () => {
    const messages = [...http, ...grpcRoutes].flatMap((yaml) => errors(validateYaml(yaml)).map((i) => i.message));
    const byRule = new Map<string, Set<string>>();
    const collect = (node: SchemaNode): void => {
      for (const r of node['x-kubernetes-validations'] ?? []) {
        if (CEL_RULES.get(r.rule)?.enforced) byRule.set(r.rule, (byRule.get(r.rule) ?? new Set()).add(r.message));
      }
      for (const child of Object.values(node.properties ?? {})) collect(child);
      if (node.items) collect(node.items);
    };
    for (const kind of GATEWAY_ROUTE_KINDS) for (const schema of Object.values(GATEWAY_ROUTE_SCHEMAS[kind].versions)) collect(schema);
    const missed = [...byRule].filter(([, texts]) => ![...texts].some((t) => messages.some((m) => m.startsWith(t)))).map(([rule]) => rule);
    expect(missed).toEqual([]);
    expect(byRule.size).toBe(60);
  });
});

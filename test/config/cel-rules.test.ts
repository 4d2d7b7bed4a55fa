import { describe, expect, it } from 'vitest';
import { GATEWAY_ROUTE_KINDS, SCHEMA_KINDS } from '../../src/config/resource.js';
import type { SchemaNode } from '../../src/config/schema/index.js';
import { GATEWAY_ROUTE_SCHEMAS, KIND_SCHEMAS } from '../../src/config/schema/index.js';
import { CEL_RULES } from '../../src/config/validate/index.js';
import { errors, summarize, validateYaml } from './helpers.js';

function rulesIn(node: SchemaNode, out: Set<string>): Set<string> {
  for (const r of node['x-kubernetes-validations'] ?? []) out.add(r.rule);
  for (const child of Object.values(node.properties ?? {})) rulesIn(child, out);
  if (node.items) rulesIn(node.items, out);
  if (node.additionalProperties) rulesIn(node.additionalProperties, out);
  return out;
}

function ruleErrors(yaml: string): string[] {
  return summarize(errors(validateYaml(yaml)).filter((i) => i.code === 'rule'));
}

describe('CEL rules of the CRDs', () => {
  it('the table holds exactly the rules of the validated kinds, all enforced', () => {
    const used = new Set<string>();
    for (const kind of SCHEMA_KINDS) for (const schema of Object.values(KIND_SCHEMAS[kind].versions)) rulesIn(schema, used);
    for (const kind of GATEWAY_ROUTE_KINDS) for (const schema of Object.values(GATEWAY_ROUTE_SCHEMAS[kind].versions)) rulesIn(schema, used);
    expect([...used].sort()).toEqual([...CEL_RULES.keys()].sort());
    // One rule is left out, with its reason: an enum on the same field reports the same problem.
    const unenforced = [...CEL_RULES].filter(([, r]) => !r.enforced);
    expect(unenforced.map(([rule]) => rule)).toEqual(["self.type in ['Exact','PathPrefix'] || self.type == 'RegularExpression'"]);
    expect(unenforced.map(([, r]) => (r.enforced ? '' : r.reason))).toEqual([expect.stringMatching(/enum on the same field/)]);
  });

  it('ServiceEntry: CIDR addresses need NONE or STATIC resolution; DNS_ROUND_ROBIN has one endpoint', () => {
    expect(
      ruleErrors(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [db.example.com]
  addresses: [10.0.0.0/24]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: DNS_ROUND_ROBIN
  endpoints:
  - address: a.db.example.com
  - address: b.db.example.com
`),
    ).toEqual([
      'error rule spec: CIDR addresses are allowed only for NONE/STATIC resolution types (found resolution "DNS_ROUND_ROBIN")',
      'error rule spec: DNS_ROUND_ROBIN mode cannot have multiple endpoints (found 2 endpoints)',
    ]);
  });

  it('endpoints: an address or a network, and Unix domain sockets without ports', () => {
    expect(
      ruleErrors(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: local}
spec:
  hosts: [local.example.com]
  resolution: STATIC
  endpoints:
  - labels: {app: x}
  - address: unix:///var/run/app.sock
    ports: {http: 8080}
  - address: unix://relative.sock
  - address: unix:///var/run/
`),
    ).toEqual([
      'error rule spec.endpoints[0]: Address is required',
      'error rule spec.endpoints[1]: UDS may not include ports',
      'error rule spec.endpoints[2].address: UDS must be an absolute path or abstract socket (found "unix://relative.sock")',
      'error rule spec.endpoints[3].address: UDS may not be a dir (found "unix:///var/run/")',
    ]);
  });

  it('WorkloadEntry: port names and numbers', () => {
    expect(
      ruleErrors(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm}
spec:
  address: 10.0.0.7
  ports:
    http_web: 8080
    grpc: 0
`),
    ).toEqual(['error rule spec.ports.grpc: port must be between 1-65535 (found 0)', 'error rule spec.ports: port name must be valid (found key "http_web")']);
  });

  it('selectors: no wildcard, no empty key', () => {
    expect(
      ruleErrors(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  workloadSelector:
    matchLabels:
      "app*": reviews
      "": x
      version: "v*"
`),
    ).toEqual([
      'error rule spec.workloadSelector.matchLabels.version: wildcard not allowed in label value match (found "v*")',
      'error rule spec.workloadSelector.matchLabels: wildcard not allowed in label key match (found key "app*")',
      'error rule spec.workloadSelector.matchLabels: key must not be empty (found key "")',
    ]);
  });

  it('Sidecar ingress TLS: credentialName, credentialNames and tlsCertificates exclude each other', () => {
    expect(
      ruleErrors(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s}
spec:
  ingress:
  - port: {number: 9080, protocol: HTTPS, name: https}
    tls:
      mode: SIMPLE
      credentialName: a
      credentialNames: [b]
`),
    ).toEqual(["error rule spec.ingress[0].tls: only one of credentialName or credentialNames can be set (found 'credentialName' and 'credentialNames')"]);
  });

  it('AuthorizationPolicy: one targeting field; serviceAccounts alone; no cross-namespace refs', () => {
    expect(
      ruleErrors(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p}
spec:
  selector: {matchLabels: {app: ratings}}
  targetRef: {kind: Service, name: ratings, namespace: other}
  rules:
  - from:
    - source:
        serviceAccounts: [bookinfo/reviews]
        namespaces: [bookinfo]
`),
    ).toEqual([
      'error rule spec.targetRef.namespace: cross namespace referencing is not currently supported (found "other")',
      'error rule spec.rules[0].from[0].source: Cannot set serviceAccounts with namespaces or principals',
      "error rule spec: only one of targetRefs or selector can be set (found 'selector' and 'targetRef')",
    ]);
  });

  it('PeerAuthentication: port-level mTLS needs a selector and valid port keys', () => {
    expect(
      ruleErrors(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:
    http: {mode: DISABLE}
`),
    ).toEqual(['error rule spec.portLevelMtls: port must be between 1-65535 (found key "http")', 'error rule spec: portLevelMtls requires selector']);
  });

  it('durations must be at least 1ms', () => {
    expect(
      ruleErrors(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    outlierDetection:
      interval: 0s
      baseEjectionTime: 1ms
`),
    ).toEqual(['error rule spec.trafficPolicy.outlierDetection.interval: must be a valid duration greater than 1ms (found "0s")']);
  });
});

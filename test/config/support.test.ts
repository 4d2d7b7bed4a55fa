import { describe, expect, it } from 'vitest';
import { SCHEMA_KINDS } from '../../src/config/resource.js';
import type { SchemaNode } from '../../src/config/schema/index.js';
import { KIND_SCHEMAS } from '../../src/config/schema/index.js';
import { FIELD_SUPPORT, fieldSupport, supportSegments, UNREAD_ENVOY_FILTER, UNREAD_ISTIO_KINDS } from '../../src/config/support.js';

function schemaPaths(node: SchemaNode, path: string, out: Set<string>): Set<string> {
  out.add(path);
  const container = node.type === 'array' ? node.items : node;
  for (const [name, child] of Object.entries(container?.properties ?? {})) schemaPaths(child, `${path}.${name}`, out);
  for (const [name, child] of Object.entries(container?.additionalProperties?.properties ?? {})) schemaPaths(child, `${path}.${name}`, out);
  return out;
}

describe('the field-support table', () => {
  it('gives reasons that speak of the product, never of our issue tracker', () => {
    const reasons = [
      ...Object.values(FIELD_SUPPORT).flatMap((fields) => Object.values(fields).flatMap((f) => [f.reason, f.values?.reason])),
      ...Object.values(UNREAD_ISTIO_KINDS).map((k) => k.reason),
      UNREAD_ENVOY_FILTER,
    ].filter((r): r is string => typeof r === 'string');
    expect(reasons.length).toBeGreaterThan(50);
    expect(reasons.filter((r) => /\bissues?\b|#\d|\bS\d+\b|grpc hooks/i.test(r))).toEqual([]);
  });

  it('names only fields the schema has', () => {
    const unknown: string[] = [];
    for (const kind of SCHEMA_KINDS) {
      const schema = KIND_SCHEMAS[kind].versions[KIND_SCHEMAS[kind].storageVersion] as SchemaNode;
      const paths = schemaPaths(schema, 'spec', new Set());
      for (const pattern of Object.keys(FIELD_SUPPORT[kind])) {
        if (!paths.has(supportSegments(pattern).join('.'))) unknown.push(`${kind} ${pattern}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('a field has the status of its nearest listed ancestor', () => {
    expect(fieldSupport('AuthorizationPolicy', 'spec.rules[].from[].source.principals')).toMatchObject({
      support: { status: 'supported' },
      from: 'spec',
    });
    expect(fieldSupport('AuthorizationPolicy', 'spec.targetRefs[].name').support.status).toBe('not-applicable');
    expect(fieldSupport('PeerAuthentication', 'spec.mtls.mode')).toMatchObject({ support: { status: 'supported' }, from: 'spec' });
    expect(fieldSupport('DestinationRule', 'spec.subsets[].trafficPolicy.portLevelSettings[].tls.insecureSkipVerify')).toMatchObject({
      support: { status: 'supported' },
      from: 'spec.subsets[].trafficPolicy.portLevelSettings[].tls',
    });
    expect(fieldSupport('VirtualService', 'spec.http[].route[].destination.subset').support.status).toBe('supported');
    expect(fieldSupport('VirtualService', 'spec.http[0].match[2].headers.x-user.exact').support.status).toBe('supported');
    expect(fieldSupport('DestinationRule', 'spec.subsets[].trafficPolicy.outlierDetection.interval').from).toBe(
      'spec.subsets[].trafficPolicy.outlierDetection',
    );
    expect(fieldSupport('Sidecar', 'spec.ingress[].tls.mode').support.status).toBe('not-applicable');
    expect(fieldSupport('AuthorizationPolicy', 'spec.rules[].from[].source.principals').support.status).toBe('supported');
  });

  it('every not-supported entry says why', () => {
    for (const kind of SCHEMA_KINDS) {
      for (const [pattern, support] of Object.entries(FIELD_SUPPORT[kind])) {
        if (support.status !== 'supported') expect([kind, pattern, typeof support.reason]).toEqual([kind, pattern, 'string']);
      }
    }
  });
});

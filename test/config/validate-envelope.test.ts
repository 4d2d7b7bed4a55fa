import { describe, expect, it } from 'vitest';
import { validateDocument } from '../../src/config/validate/index.js';
import { errors, summarize, validateYaml } from './helpers.js';

describe('the Kubernetes envelope', () => {
  it('rejects an apiVersion not served for the kind, naming the served ones', () => {
    const result = validateYaml('apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: reviews}\nspec: {}\n');
    expect(result.resource).toBeUndefined();
    expect(summarize(result.issues)).toEqual([
      'error api-version apiVersion: VirtualService is served as networking.istio.io/v1, networking.istio.io/v1alpha3, networking.istio.io/v1beta1; found apiVersion "networking.istio.io/v2"',
    ]);
    const wrongGroup = validateYaml('apiVersion: security.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec: {host: r}\n');
    expect(summarize(wrongGroup.issues)).toEqual([
      'error api-version apiVersion: DestinationRule is served as networking.istio.io/v1, networking.istio.io/v1alpha3, networking.istio.io/v1beta1; found apiVersion "security.istio.io/v1"',
    ]);
    const noGroup = validateYaml('apiVersion: v1\nkind: PeerAuthentication\nmetadata: {name: r}\nspec: {}\n');
    expect(summarize(noGroup.issues)).toEqual([
      'error api-version apiVersion: PeerAuthentication is served as security.istio.io/v1, security.istio.io/v1beta1; found apiVersion "v1"',
    ]);
  });

  it('rejects a misspelled Istio kind with a suggestion', () => {
    const result = validateYaml('apiVersion: networking.istio.io/v1\nkind: VirtualSevrice\nmetadata: {name: reviews}\nspec: {}\n');
    expect(summarize(result.issues)).toEqual([
      'error unknown-kind kind: unknown Istio kind "VirtualSevrice" in networking.istio.io/v1; did you mean \'VirtualService\'?',
    ]);
  });

  it('warns about Istio kinds it does not read, with why, and returns no resource', () => {
    const gateway = validateYaml('apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway}\nspec: {}\n');
    expect(gateway.resource).toBeUndefined();
    expect(summarize(gateway.issues)).toEqual([
      'warning not-applicable kind: Gateway does not apply to an in-process mesh and is ignored: configures the ingress/egress gateway proxies at the edge of the mesh, not the workloads inside it',
    ]);
    const envoyFilter = validateYaml('apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: ratelimit}\nspec: {}\n');
    // An EnvoyFilter without a local rate-limit patch is not read: one warning, never an error.
    expect(envoyFilter.resource).toBeUndefined();
    expect(envoyFilter.issues.map((i) => [i.severity, i.code])).toEqual([['warning', 'not-applicable']]);
    for (const [apiVersion, kind] of [
      ['telemetry.istio.io/v1', 'Telemetry'],
      ['networking.istio.io/v1', 'WorkloadGroup'],
      ['networking.istio.io/v1beta1', 'ProxyConfig'],
      ['extensions.istio.io/v1alpha1', 'WasmPlugin'],
    ]) {
      const result = validateYaml(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: x}\nspec: {}\n`);
      expect(result.resource).toBeUndefined();
      expect(result.issues).toHaveLength(1);
      expect(result.issues[0]?.severity).toBe('warning');
      expect(result.issues[0]?.message).toMatch(new RegExp(`^${kind} (is not implemented yet|does not apply)`));
    }
  });

  it('warns that non-Istio kinds are ignored', () => {
    for (const [apiVersion, kind] of [
      ['v1', 'Service'],
      ['apps/v1', 'Deployment'],
      ['v1', 'ConfigMap'],
      ['gateway.networking.k8s.io/v1alpha2', 'TCPRoute'],
      ['gateway.networking.k8s.io/v1', 'Gateway'],
      ['appmesh.k8s.aws/v1beta2', 'VirtualService'],
    ]) {
      const result = validateYaml(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: reviews}\nspec: {}\n`);
      expect(result.resource).toBeUndefined();
      expect(result.issues.map((i) => [i.severity, i.code])).toEqual([['warning', 'ignored']]);
      expect(result.issues[0]?.message).toMatch(/is not an Istio resource; ignored$/);
    }
    expect(validateYaml('apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n').issues[0]?.message).toBe(
      'Service (v1) is not an Istio resource; ignored',
    );
  });

  it('requires kind, apiVersion, metadata.name and spec', () => {
    expect(summarize(validateYaml('apiVersion: networking.istio.io/v1\nmetadata: {name: x}\n').issues)).toEqual([
      "error required kind: missing required field 'kind'",
    ]);
    expect(summarize(validateYaml('kind: VirtualService\nmetadata: {name: x}\nspec: {}\n').issues)).toEqual([
      "error required apiVersion: missing required field 'apiVersion'",
    ]);
    expect(summarize(validateYaml('apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: {}\n').issues)).toEqual([
      "error required metadata: missing required field 'metadata'",
    ]);
    expect(summarize(validateYaml('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {namespace: x}\nspec: {}\n').issues)).toEqual([
      "error required metadata.name: missing required field 'name'",
    ]);
    expect(summarize(validateYaml('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n').issues)).toEqual([
      "error required spec: missing required field 'spec'",
    ]);
  });

  it('checks names and label values as Kubernetes does', () => {
    const result = validateYaml(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: Reviews_V2
  namespace: Book.Info
  labels:
    version: 2
spec: {}
`);
    expect(summarize(errors(result))).toEqual([
      "error invalid-name metadata.name: expected a name of at most 253 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, found \"Reviews_V2\"",
      'error invalid-name metadata.namespace: expected a namespace of at most 63 lowercase letters, digits and \'-\', starting and ending with a letter or digit, found "Book.Info"',
      'error type metadata.labels.version: expected a string, found a number 2 (quote it: "2")',
    ]);
  });

  it('rejects unknown top-level fields with a suggestion', () => {
    const result = validateYaml('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspecs: {}\n');
    expect(summarize(result.issues)).toEqual([
      "error unknown-field specs: unknown field 'specs'; did you mean 'spec'?",
      "error required spec: missing required field 'spec'",
    ]);
  });

  it('rejects a document that is not an object, located at the document', () => {
    const result = validateDocument({ value: ['a'], location: { file: 'list.yaml', line: 3 } }, { defaultNamespace: 'default' });
    expect(result.issues).toEqual([
      {
        severity: 'error',
        code: 'type',
        message: 'expected a Kubernetes resource (an object with apiVersion, kind, metadata and spec), found a list',
        location: { file: 'list.yaml', line: 3 },
      },
    ]);
  });

  it('defaults the namespace and names the resource in every issue', () => {
    const result = validateDocument(
      { value: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: {} }, location: { file: 'inline[0]' } },
      { defaultNamespace: 'shop' },
    );
    expect(result.issues).toEqual([
      {
        severity: 'error',
        code: 'required',
        message: "missing required field 'host'",
        resource: { kind: 'DestinationRule', namespace: 'shop', name: 'reviews' },
        path: 'spec.host',
        location: { file: 'inline[0]' },
      },
    ]);
  });
});

import { parseAllDocuments } from 'yaml';
import type { InlineConfig, Mesh, MeshOptions } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import { explainRoute } from '../../src/inspect/explain-route.js';
import type { RouteExplanation } from '../../src/inspect/explain-route.js';

/**
 * Inline resources from a multi-document YAML string. Parsed YAML has no static type (and tests
 * give invalid resources on purpose): the mesh validates it at run time, as it does files.
 */
export function docs(yamlText: string): InlineConfig[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as InlineConfig | null)
    .filter((d): d is InlineConfig => d !== null);
}

export async function meshFromYaml(yamlText: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  return createMesh({ ...options, config: docs(yamlText), watch: false });
}

/** What the mesh would do with a request, as `sidecarless explain` shows it. */
export function explain(mesh: Mesh, method: string, url: string, headers: Record<string, string> = {}): RouteExplanation {
  const map = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return explainRoute(mesh.snapshot, method, new URL(url), map);
}

/** `host subset` of every destination of the matched route, with percentages. */
export function destinations(e: RouteExplanation): string[] {
  return e.destinations.map((d) => `${d.host}${d.subset ? ` ${d.subset}` : ''} ${Math.round(d.percent)}%`);
}

/**
 * The ServiceEntry most tests start from: `reviews` in `shop`, an HTTP port, STATIC endpoints on
 * loopback "pods". YAML text ending in a newline, to join with `---` and further resources.
 */
export function reviewsServiceEntry(port: number, addresses: readonly string[]): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [${addresses.map((a) => `{ address: ${a} }`).join(', ')}]
`;
}

/** Shape checks shared by every source: what counts as one Kubernetes object, what as a list. */

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `a list`, `a string ("foo")`, ... for messages about a value of the wrong shape. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 40)}...` : value;
      return `a string (${JSON.stringify(shown)})`;
    }
    case 'number':
    case 'bigint':
      return `a number (${String(value)})`;
    case 'boolean':
      return `a boolean (${String(value)})`;
    case 'object':
      return 'a mapping';
    default:
      return `a ${typeof value}`;
  }
}

export function notAnObjectMessage(value: unknown): string {
  return `expected a Kubernetes object (mapping with apiVersion, kind, metadata), found ${describeValue(value)}`;
}

/** The items of a Kubernetes list, or why the list is malformed. */
export type ListExpansion = { readonly items: readonly unknown[] } | { readonly error: string };

/**
 * `kind: List` (what `kubectl get -o yaml` prints) and typed lists such as `VirtualServiceList`
 * (what the API server returns) hold their resources in `items`. Returns undefined for anything
 * that is not a list, so the caller treats it as a single resource.
 */
export function expandKubernetesList(value: JsonObject): ListExpansion | undefined {
  const kind = value['kind'];
  if (typeof kind !== 'string') return undefined;
  const items = value['items'];
  if (kind === 'List') {
    if (items === undefined || items === null) return { items: [] };
    if (!Array.isArray(items)) return { error: `kind List needs an items list, found ${describeValue(items)}` };
    return { items };
  }
  // A CRD may legitimately be named `...List`; only an items array makes it a list.
  if (!kind.endsWith('List') || kind.length === 4 || !Array.isArray(items)) return undefined;
  const itemKind = kind.slice(0, -4);
  const apiVersion = value['apiVersion'];
  return { items: items.map((item) => fillTypedListItem(item, itemKind, apiVersion)) };
}

/** Items of a typed list returned by the API server may omit their kind and apiVersion. */
function fillTypedListItem(item: unknown, kind: string, apiVersion: unknown): unknown {
  if (!isJsonObject(item) || (item['kind'] !== undefined && item['apiVersion'] !== undefined)) return item;
  const filled: JsonObject = { kind, ...item };
  if (filled['apiVersion'] === undefined && typeof apiVersion === 'string') {
    return { apiVersion, ...filled };
  }
  return filled;
}

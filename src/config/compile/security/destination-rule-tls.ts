import type { IssueSink } from '../context.js';
import { locate } from '../context.js';
import type { MeshResource } from '../../resource.js';
import { resourceRef } from '../../resource.js';
import type { TlsCompileInput, TlsOrigination, UpstreamTls } from '../../../security/tls-settings.js';
import { compileClientTls } from '../../../security/tls-settings.js';

type Obj = Readonly<Record<string, unknown>>;

/** How the files a `tls` block names are read (or not, away from the workload). */
export type TlsFileAccess = Pick<TlsCompileInput, 'readFile' | 'readFiles'>;
type Path = readonly (string | number)[];

const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The compiled `tls` blocks of the DestinationRules a caller sees, keyed by the block object
 * itself: merging a traffic policy (top level < subset < port) keeps the blocks as written, so
 * the block in force for a destination finds its compiled settings without a second merge.
 */
export class UpstreamTlsTable {
  private readonly compiled = new WeakMap<object, UpstreamTls>();

  /**
   * Compiles every `tls` block of `resource` (top level, subsets, and their port-level settings);
   * each problem is an error on the block's field, so the change is rejected whole.
   */
  add(resource: MeshResource, sink: IssueSink, files: TlsFileAccess = {}): void {
    for (const { block, path } of tlsBlocks(resource)) this.block(resource, block, path, sink, files);
  }

  /** The compiled settings of a `tls` block (as found in a merged policy); undefined for none. */
  get(block: unknown): UpstreamTls | undefined {
    return isObject(block) ? this.compiled.get(block) : undefined;
  }

  private block(resource: MeshResource, block: unknown, path: Path, sink: IssueSink, files: TlsFileAccess): void {
    if (!isObject(block) || this.compiled.has(block)) return;
    const { tls, problems } = compileClientTls({ spec: block, resource: resourceRef(resource), path: pathText(path), ...files });
    for (const p of problems) {
      const at = [...path, ...p.field];
      sink.error({ code: p.code, message: p.message, resource: resourceRef(resource), path: pathText(at), location: locate(resource, at) });
    }
    if (tls) this.compiled.set(block, tls);
  }
}

/** Every `tls` block of a DestinationRule with its path: top level, subsets, and their port-level settings. */
function tlsBlocks(resource: MeshResource): { readonly block: unknown; readonly path: Path }[] {
  const out: { block: unknown; path: Path }[] = [];
  const spec = resource.spec as Obj;
  const policy = (value: unknown, path: Path): void => {
    if (!isObject(value)) return;
    out.push({ block: value['tls'], path: [...path, 'tls'] });
    const ports = value['portLevelSettings'];
    if (Array.isArray(ports)) ports.forEach((p, i) => isObject(p) && out.push({ block: p['tls'], path: [...path, 'portLevelSettings', i, 'tls'] }));
  };
  policy(spec['trafficPolicy'], ['spec', 'trafficPolicy']);
  const subsets = spec['subsets'];
  if (Array.isArray(subsets)) subsets.forEach((s, i) => isObject(s) && policy(s['trafficPolicy'], ['spec', 'subsets', i, 'trafficPolicy']));
  return out;
}

/**
 * The compiled `tls` settings of a snapshot's DestinationRules that read credentials at run time
 * (`credentialName`, certificate files): what must stay watched while that snapshot serves.
 */
export function runtimeCredentials(resources: readonly MeshResource[], compiled: (block: unknown) => UpstreamTls | undefined): TlsOrigination[] {
  const out: TlsOrigination[] = [];
  for (const resource of resources) {
    if (resource.kind !== 'DestinationRule') continue;
    for (const { block } of tlsBlocks(resource)) {
      const tls = compiled(block);
      if (tls?.kind === 'originate' && tls.credential) out.push(tls);
    }
  }
  return out;
}

function pathText(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

import type { IssueSink } from '../config/compile/context.js';
import { locate } from '../config/compile/context.js';
import type { MeshResource } from '../config/resource.js';
import { resourceRef } from '../config/resource.js';
import type { TlsCompileInput, UpstreamTls } from './tls-settings.js';
import { compileClientTls } from './tls-settings.js';

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
    const spec = resource.spec as Obj;
    const policy = (value: unknown, path: Path): void => {
      if (!isObject(value)) return;
      this.block(resource, value['tls'], [...path, 'tls'], sink, files);
      const ports = value['portLevelSettings'];
      if (Array.isArray(ports)) ports.forEach((p, i) => isObject(p) && this.block(resource, p['tls'], [...path, 'portLevelSettings', i, 'tls'], sink, files));
    };
    policy(spec['trafficPolicy'], ['spec', 'trafficPolicy']);
    const subsets = spec['subsets'];
    if (Array.isArray(subsets)) subsets.forEach((s, i) => isObject(s) && policy(s['trafficPolicy'], ['spec', 'subsets', i, 'trafficPolicy']));
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

function pathText(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

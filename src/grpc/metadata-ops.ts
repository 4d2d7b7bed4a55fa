import type { Metadata } from '@grpc/grpc-js';
import type { HeaderOps } from '../routing/route-actions.js';

/**
 * A VirtualService's header rules (`headers.request`, `headers.response`, compiled once per route)
 * on a call's metadata, as Envoy's header parser applies them to the HTTP/2 headers that carry
 * it: every removal first, then the writes in order (`set` replaces, `add` appends). A `-bin`
 * key's value is what goes on the wire, base64, so it is decoded for grpc-js, which encodes it again.
 * Returns what grpc-js refused to write (a key or value metadata cannot carry), else undefined.
 */
export function applyMetadataOps(metadata: Metadata, ops: readonly HeaderOps[]): string | undefined {
  let refused: string | undefined;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    for (const name of op.remove) metadata.remove(name);
    for (const { name, value, append } of op.write) {
      const written = name.endsWith('-bin') ? Buffer.from(value, 'base64') : value;
      try {
        if (append) metadata.add(name, written);
        else metadata.set(name, written);
      } catch (error) {
        // grpc-js refuses keys and values HTTP/2 metadata cannot carry: that write is skipped.
        refused ??= `${name}: ${error instanceof Error ? error.message : String(error)}`;
      }
    }
  }
  return refused;
}

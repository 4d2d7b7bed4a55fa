import type { Metadata } from '@grpc/grpc-js';
import type { HeaderOps } from '../routing/route-actions.js';

/**
 * A VirtualService's header rules (`headers.request`, `headers.response`, compiled once per route)
 * on a call's metadata, as Envoy's header parser applies them to the HTTP/2 headers that carry
 * it: every removal first, then the writes in order (`set` replaces, `add` appends). A `-bin`
 * key's value is what goes on the wire, base64, so it is decoded for grpc-js, which encodes it again.
 */
export function applyMetadataOps(metadata: Metadata, ops: readonly HeaderOps[]): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    for (const name of op.remove) metadata.remove(name);
    for (const { name, value, append } of op.write) {
      const written = name.endsWith('-bin') ? Buffer.from(value, 'base64') : value;
      if (append) metadata.add(name, written);
      else metadata.set(name, written);
    }
  }
}

import type { Mesh, MeshOptions } from './mesh.js';

/**
 * Creates a mesh: reads and validates the configuration, compiles the first snapshot, and starts
 * watching. Rejects with a `MeshConfigError` listing every problem if the configuration is invalid.
 */
export async function createMesh(options: MeshOptions = {}): Promise<Mesh> {
  // The mesh's code (the data path, discovery, undici) loads on the first call, not when the
  // package is imported: an application pays for it once it creates a mesh (docs/performance.md).
  const { startMesh } = await import('./mesh.js');
  return startMesh(options);
}

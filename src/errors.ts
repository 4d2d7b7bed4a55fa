// Imports nothing: every folder may import it (docs/architecture.md).

/**
 * Marks the prototype of every build's `MeshError`: how an error made by one build of this
 * package (ESM or CJS) is recognised by the other's classes. Versioned like the shared state.
 */
const BRAND = Symbol.for('sidecarless.MeshError.v1');
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/**
 * Base of every error the mesh throws; `code` is stable, the message is for people.
 *
 * `instanceof` works across the package's two builds: an application that loads both the ESM and
 * the CommonJS build (through a dependency) gets two copies of each class, and an error from one
 * is still `instanceof` the other's class of the same name (and of `MeshError`), never of another.
 */
export abstract class MeshError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (ordinaryHasInstance.call(this, value)) return true;
    // Another build's error: its own class chain, walked by name up to its MeshError.
    if (typeof value !== 'object' || value === null || !(BRAND in value)) return false;
    const name = this.name;
    for (let proto = Object.getPrototypeOf(value) as object | null; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
      const ctor = Object.hasOwn(proto, 'constructor') ? (proto as { constructor: unknown }).constructor : undefined;
      if (typeof ctor === 'function' && ctor.name === name) return true;
      if (Object.hasOwn(proto, BRAND)) return false;
    }
    return false;
  }
}
Object.defineProperty(MeshError.prototype, BRAND, { value: true });

/**
 * The mesh was closed: requests made after `close()` reject with this, and requests still in
 * flight when the drain period ends are aborted with it.
 */
export class MeshClosedError extends MeshError {
  readonly code = 'ERR_MESH_CLOSED';
  constructor(message = 'the mesh is closed') {
    super(message);
  }
}

/**
 * The caller's request cannot be sent as given (an invalid header name or value, a bad URL, a
 * dispatcher option the mesh cannot honour). Nothing went out; it is never retried and never
 * counted against an upstream. `cause` holds the underlying error (undici's, usually).
 */
export class InvalidRequestError extends MeshError {
  readonly code = 'ERR_MESH_INVALID_REQUEST';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

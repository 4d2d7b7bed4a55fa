import { createRequire } from 'node:module';

/**
 * A package loaded on first use instead of when sidecarless is imported, for code that needs it
 * synchronously (an RE2 compile, a breaker made by `mesh.breaker()`): importing the package stays
 * cheap for an application that never uses it. Through require(), so the CommonJS build of the
 * package is the one loaded, whichever build of sidecarless asks.
 */
export function lazyRequire<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= createRequire(import.meta.url)(specifier) as T);
}

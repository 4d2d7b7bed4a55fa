/**
 * State that must be one per process even when an application loads both builds of this package
 * (an ESM app with a CommonJS dependency that also requires sidecarless gets dist/index.js and
 * dist/index.cjs, two copies of every module). It lives on `globalThis` under a registered symbol,
 * so the second build finds what the first made. The key carries a version: a release that
 * changes the shape of the state uses a new key rather than misreading the old one.
 */
export function sharedState<T>(key: string, create: () => T): T {
  const holder = globalThis as unknown as Record<symbol, T | undefined>;
  const symbol = Symbol.for(`sidecarless.${key}`);
  return (holder[symbol] ??= create());
}

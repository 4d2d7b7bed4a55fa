import type * as Jose from 'jose';

export type JoseModule = typeof Jose;

let loading: Promise<JoseModule> | undefined;

/** jose, imported the first time a RequestAuthentication needs it: a mesh without JWT rules never loads it. */
export function loadJose(): Promise<JoseModule> {
  loading ??= import('jose');
  return loading;
}

import { SecurityOptionError } from '../../security/errors.js';
import type { AuthorizerFunction } from '../../security/authz/custom-authorizer.js';
import type { ExtensionProvider } from '../../security/authz/ext-authz-http.js';
import type { InboundOptions, MeshConfigOptions } from './inbound-options.js';
import type { PathNormalization } from './path-normalization.js';
import { DEFAULT_PATH_NORMALIZATION } from './path-normalization.js';

const NORMALIZATIONS = new Set(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']);

/** The inbound options of `createMesh`, checked once. */
export interface InboundMeshConfig {
  readonly normalization: PathNormalization;
  readonly extensionProviders: ReadonlyMap<string, ExtensionProvider>;
  readonly authorizers: ReadonlyMap<string, AuthorizerFunction>;
  readonly trustedProxies: number;
  readonly timeoutMs: number | undefined;
  /** Every provider name a CUSTOM policy may use. */
  readonly providerNames: ReadonlySet<string>;
}

/** Checks `meshConfig` and `inbound`; a bad value throws `SecurityOptionError` naming the option. */
export function inboundMeshConfig(options: { readonly meshConfig?: MeshConfigOptions; readonly inbound?: InboundOptions }): InboundMeshConfig {
  const mode = options.meshConfig?.pathNormalization?.normalization ?? 'DEFAULT';
  if (!NORMALIZATIONS.has(mode)) {
    throw new SecurityOptionError(
      `meshConfig.pathNormalization.normalization: expected one of ${[...NORMALIZATIONS].join(', ')}, found ${JSON.stringify(mode)}`,
    );
  }
  const providers = new Map<string, ExtensionProvider>();
  (options.meshConfig?.extensionProviders ?? []).forEach((p, i) => {
    const at = `meshConfig.extensionProviders[${i}]`;
    if (!p.name) throw new SecurityOptionError(`${at}.name: expected a provider name`);
    if (providers.has(p.name)) throw new SecurityOptionError(`${at}.name: provider "${p.name}" is defined twice`);
    const http = p.envoyExtAuthzHttp;
    if (http) {
      if (!http.service) throw new SecurityOptionError(`${at}.envoyExtAuthzHttp.service: expected the authorization service's host`);
      if (!Number.isInteger(http.port) || http.port < 1 || http.port > 65535)
        throw new SecurityOptionError(`${at}.envoyExtAuthzHttp.port: expected a port from 1 to 65535, found ${String(http.port)}`);
      if ('includeRequestBodyInCheck' in http)
        throw new SecurityOptionError(
          `${at}.envoyExtAuthzHttp.includeRequestBodyInCheck: not implemented (the request body is never sent to the authorization service)`,
        );
    }
    providers.set(p.name, p);
  });
  const authorizers = new Map(Object.entries(options.inbound?.authorizers ?? {}));
  for (const [name, fn] of authorizers) {
    if (typeof fn !== 'function') throw new SecurityOptionError(`inbound.authorizers.${name}: expected a function`);
  }
  const trustedProxies = options.inbound?.numTrustedProxies ?? 0;
  if (!Number.isInteger(trustedProxies) || trustedProxies < 0)
    throw new SecurityOptionError(`inbound.numTrustedProxies: expected a whole number ≥ 0, found ${String(trustedProxies)}`);
  const timeoutMs = options.inbound?.timeoutMs;
  if (timeoutMs !== undefined && !(timeoutMs > 0))
    throw new SecurityOptionError(`inbound.timeoutMs: expected a number of milliseconds > 0, found ${String(timeoutMs)}`);
  return {
    normalization: mode === 'DEFAULT' ? DEFAULT_PATH_NORMALIZATION : (mode as PathNormalization),
    extensionProviders: providers,
    authorizers,
    trustedProxies,
    timeoutMs,
    providerNames: new Set([...providers.keys(), ...authorizers.keys()]),
  };
}

import { parseDuration } from '../../duration.js';
import type { InboundRequest } from '../inbound/inbound-request.js';
import type { CustomAuthorizer, CustomVerdict } from './custom-authorizer.js';
import type { ValueMatcher } from './value-match.js';
import { anyOf, stringValue } from './value-match.js';

/** Istio's `meshConfig.extensionProviders[].envoyExtAuthzHttp`. */
export interface EnvoyExtAuthzHttpProvider {
  /** `host` or `namespace/host` of the authorization service. */
  readonly service: string;
  readonly port: number;
  /** Default 600s, as Istio. */
  readonly timeout?: string;
  readonly pathPrefix?: string;
  /** Let requests through when the service cannot be asked. Default false. */
  readonly failOpen?: boolean;
  /** Status when the service cannot be asked (and not failOpen). Default 403. */
  readonly statusOnError?: string;
  /** Request headers sent to the service besides Envoy's defaults (exact, `prefix*`, `*suffix`). */
  readonly includeRequestHeadersInCheck?: readonly string[];
  readonly includeAdditionalHeadersInCheck?: Readonly<Record<string, string>>;
  readonly headersToUpstreamOnAllow?: readonly string[];
  readonly headersToDownstreamOnAllow?: readonly string[];
  readonly headersToDownstreamOnDeny?: readonly string[];
}

/** Istio's `meshConfig.extensionProviders[]` entry, as far as authorization reads it. */
export interface ExtensionProvider {
  readonly name: string;
  readonly envoyExtAuthzHttp?: EnvoyExtAuthzHttpProvider;
  /** Not implemented: a CUSTOM policy using it denies what it matches (fails closed). */
  readonly envoyExtAuthzGrpc?: Readonly<Record<string, unknown>>;
}

/** The response of the check call. */
export interface CheckResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** Sends the check request (through the mesh, so the service is found as any other). */
export type CheckSender = (url: string, method: string, headers: Record<string, string>, timeoutMs: number) => Promise<CheckResponse>;

/** Headers Envoy's HTTP ext authz always sends the service (besides the ones configured). */
const ALWAYS = ['authorization'];

function patterns(list: readonly string[] | undefined): ValueMatcher | undefined {
  return list && list.length > 0 ? anyOf(list.map((p) => stringValue(p.toLowerCase(), '', true))) : undefined;
}

function pick(headers: CheckResponse['headers'], matcher: ValueMatcher | undefined, all: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === 'content-length' || name === 'transfer-encoding' || name === 'connection' || name === 'host') continue;
    if (matcher ? matcher.test(name) : all) out[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}

/**
 * Envoy's HTTP ext authz as Istio configures it: the request's method and path (after
 * `pathPrefix`) with no body and the allowed headers go to the service; 200 lets the request on
 * (copying `headersToUpstreamOnAllow` onto it), anything else is the denial sent to the caller
 * (its status, body and `headersToDownstreamOnDeny`, all headers when unset); a failed call is
 * `statusOnError` (403) unless `failOpen`.
 */
export function extAuthzHttp(provider: EnvoyExtAuthzHttpProvider, send: CheckSender): CustomAuthorizer {
  const slash = provider.service.indexOf('/');
  const host = slash >= 0 ? provider.service.slice(slash + 1) : provider.service;
  const base = `http://${host}:${provider.port}${provider.pathPrefix ?? ''}`;
  const timeoutMs = provider.timeout !== undefined ? (parseDuration(provider.timeout) ?? 600_000) : 600_000;
  const include = patterns(provider.includeRequestHeadersInCheck);
  const additional = provider.includeAdditionalHeadersInCheck ?? {};
  const toUpstream = patterns(provider.headersToUpstreamOnAllow);
  const toDownstreamOnAllow = patterns(provider.headersToDownstreamOnAllow);
  const toDownstreamOnDeny = patterns(provider.headersToDownstreamOnDeny);
  const errorStatus = Number(provider.statusOnError ?? '403') || 403;
  return {
    async check(request: InboundRequest): Promise<CustomVerdict> {
      const headers: Record<string, string> = { 'content-length': '0' };
      for (const [name, value] of Object.entries(request.headers)) {
        if (value === undefined || name.startsWith(':')) continue;
        if (ALWAYS.includes(name) || include?.test(name)) headers[name] = Array.isArray(value) ? value.join(',') : value;
      }
      Object.assign(headers, additional);
      headers['x-forwarded-host'] = request.host;
      let response: CheckResponse;
      try {
        response = await send(`${base}${request.path}${request.query === '' ? '' : `?${request.query}`}`, request.method, headers, timeoutMs);
      } catch {
        return provider.failOpen ? { allow: true } : { allow: false, status: errorStatus, body: '' };
      }
      if (response.status === 200) {
        return { allow: true, requestHeaders: pick(response.headers, toUpstream, false), responseHeaders: pick(response.headers, toDownstreamOnAllow, false) };
      }
      return { allow: false, status: response.status, headers: pick(response.headers, toDownstreamOnDeny, true), body: response.body };
    },
  };
}

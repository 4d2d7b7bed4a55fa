export { DnsEndpointSource, dnsWatchKey } from './dns-endpoint-source.js';
export type {
  DnsEndpointChange,
  DnsEndpointSourceEvents,
  DnsEndpointSourceOptions,
  DnsLookupFailure,
  DnsMode,
  DnsWatchSpec,
  DnsWatchStatus,
} from './dns-endpoint-source.js';
export { lookupEndpoints, makeEndpoint } from './dns-lookup.js';
export type { DnsFamily, DnsLookupContext, DnsLookupResult, DnsTarget, EndpointTemplate } from './dns-lookup.js';
export { DnsResolver } from './dns-resolver.js';
export { DnsLookupError, DnsOptionError } from './errors.js';
export type { DnsAddress, DnsAnswer, DnsQuerier, DnsResolverOptions, DnsSrvRecord } from './dns-resolver.js';
export { applyResolvConfOverrides, kubernetesSearchDomains, parseResolvConf, readResolvConf, RESOLV_CONF_DEFAULTS, RESOLV_CONF_PATH } from './resolv-conf.js';
export type { ResolvConf, ResolvConfOverrides } from './resolv-conf.js';
export { searchNames } from './search-names.js';
export { compilePortNames, isKubernetesServiceName, srvPortName } from './kubernetes-srv.js';
export { createMeshDnsSource } from './mesh-dns.js';
export type { MeshDnsOptions } from './mesh-dns.js';

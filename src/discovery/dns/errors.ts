import { MeshError } from '../../errors.js';

/**
 * A `dns` option of the mesh is malformed (a `portNames` key that is not a Kubernetes service
 * name and port, say). Thrown by `createMesh`, which then starts nothing.
 */
export class DnsOptionError extends MeshError {
  readonly code = 'ERR_MESH_DNS_OPTION';
}

/**
 * A DNS query got no usable answer: the server failed (`ESERVFAIL`), refused (`EREFUSED`), did
 * not answer in time (`ETIMEOUT`), could not be reached (`ECONNREFUSED`), or the query was
 * cancelled (`ECANCELLED`). Unlike NXDOMAIN, this says nothing about the name, so discovery keeps
 * the last good endpoints.
 */
export class DnsLookupError extends MeshError {
  readonly code = 'ERR_MESH_DNS_LOOKUP';
  /** The name that was queried. */
  readonly hostname: string;
  /** Node's DNS error code (`ESERVFAIL`, `ETIMEOUT`, `ECONNREFUSED`, ...). */
  readonly dnsCode: string;
  /** The record type asked for. */
  readonly rrtype: 'A' | 'AAAA' | 'SRV';
  constructor(hostname: string, rrtype: 'A' | 'AAAA' | 'SRV', dnsCode: string, options?: { cause?: unknown }) {
    super(`DNS ${rrtype} query for ${hostname} failed: ${dnsCode}`, options);
    this.hostname = hostname;
    this.dnsCode = dnsCode;
    this.rrtype = rrtype;
  }
}

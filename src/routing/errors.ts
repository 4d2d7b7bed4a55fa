import { MeshError } from '../errors.js';

/**
 * A VirtualService has `tls` routes for this TLS/HTTPS port but none matches the connection's SNI
 * (or destination address): Envoy finds no filter chain and closes the connection. Nothing is sent.
 */
export class NoTlsRouteError extends MeshError {
  readonly code = 'ERR_MESH_NO_TLS_ROUTE';
  constructor(
    readonly host: string,
    readonly port: number,
    readonly sni: string | undefined,
    /** `VirtualService ns/name`. */
    readonly virtualService: string,
  ) {
    super(
      `no tls route of ${virtualService} matches SNI ${sni === undefined ? '(none: the URL names an IP address)' : `"${sni}"`} for ${host}:${port}; as Envoy finds no filter chain, the connection is refused and nothing is sent`,
    );
  }
}

/**
 * A plaintext `http://` request to a service port whose protocol is TLS or HTTPS: such ports carry
 * TLS the client originates (routed by SNI), so the mesh refuses rather than send plaintext there.
 */
export class TlsPortPlaintextError extends MeshError {
  readonly code = 'ERR_MESH_TLS_PORT_PLAINTEXT';
  constructor(
    readonly host: string,
    readonly port: number,
    readonly protocol: string,
  ) {
    super(
      `${host}:${port} is ${protocol === 'HTTPS' ? 'an' : 'a'} ${protocol} port: requests to it must use an https:// URL (TLS from the client, routed by SNI); the plaintext http:// request was refused and nothing was sent`,
    );
  }
}

import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { CallCredentials, ChannelCredentials } from '@grpc/grpc-js';
import type { ChannelOptions, experimental } from '@grpc/grpc-js';
import { UpstreamTlsError } from '../security/errors.js';
import type { RegisteredTransport } from './registry.js';
import { TRANSPORT_OPTION, transportById } from './registry.js';

type SecureConnector = experimental.SecureConnector;
type SecureConnectResult = experimental.SecureConnectResult;

/** Marks the mesh's credentials across builds (the ESM and CJS classes differ). */
const BRAND = Symbol.for('sidecarless.grpc.channel-credentials');

function endpointOf(socket: Socket): string {
  const address = socket.remoteAddress ?? 'unknown';
  return `${address.includes(':') ? `[${address}]` : address}:${socket.remotePort ?? 0}`;
}

/** TLS on the TCP connection grpc-js made, as the transport says; a failed handshake becomes an {@link UpstreamTlsError}. */
function tlsHandshake(socket: Socket, transport: RegisteredTransport): Promise<SecureConnectResult> {
  const endpoint = endpointOf(socket);
  const servername = transport.options.servername;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (reason: string, cause: Error): void => {
      if (settled) return;
      settled = true;
      tls.destroy();
      const error = new UpstreamTlsError(endpoint, servername, reason, cause);
      // grpc-js passes the failure on as text (`${error}`): the code, then Envoy's words.
      error.toString = () => `${error.code}: ${error.message}`;
      reject(error);
    };
    const tls: TLSSocket = tlsConnect({ ...transport.options, socket }, () => {
      if (settled) return;
      if (tls.alpnProtocol !== 'h2') {
        fail(
          'no h2',
          new Error(
            `the server chose ${tls.alpnProtocol === false ? 'no protocol' : JSON.stringify(tls.alpnProtocol)} by ALPN; gRPC needs HTTP/2 (h2) (${transport.source})`,
          ),
        );
        return;
      }
      // The listeners stay (settled, they do nothing): a late socket error must never go unhandled.
      settled = true;
      resolve({ socket: tls, secure: true });
    });
    const onError = (error: Error & { code?: unknown }): void => {
      const message = error.message.includes(transport.source) ? error.message : `${error.message} (${transport.source})`;
      fail(typeof error.code === 'string' ? error.code : 'handshake failed', new Error(message, { cause: error }));
    };
    const onClose = (): void => fail('connection closed', new Error(`the connection closed during the TLS handshake (${transport.source})`));
    tls.on('error', onError);
    tls.once('close', onClose);
  });
}

/** Whether `credentials` are the mesh's (from either build of sidecarless). */
export function isMeshCredentials(credentials: ChannelCredentials): boolean {
  return (credentials as { [BRAND]?: unknown })[BRAND] === true;
}

/**
 * grpc-js channel credentials that take the transport of each subchannel from the mesh: the
 * balancer names it in the subchannel's options when it makes the subchannel for an endpoint
 * (mesh mTLS, a DestinationRule's TLS, or plaintext where the mesh speaks plaintext). Each
 * connection is made with what the subchannel was made with; new settings or a rotated
 * certificate make a new subchannel, so new connections use them.
 */
export class MeshChannelCredentials extends ChannelCredentials {
  readonly [BRAND] = true;

  constructor(private readonly callCredentials: CallCredentials = CallCredentials.createEmpty()) {
    super();
  }

  /** Call credentials (tokens in metadata) on every call, whatever the connection's transport. */
  override compose(callCredentials: CallCredentials): MeshChannelCredentials {
    return new MeshChannelCredentials(this.callCredentials.compose(callCredentials));
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    if (other === this) return true;
    const mesh = other as { [BRAND]?: unknown; callCredentials?: CallCredentials };
    return mesh[BRAND] === true && mesh.callCredentials !== undefined && this.callCredentials._equals(mesh.callCredentials);
  }

  _createSecureConnector(_target: experimental.GrpcUri, options: ChannelOptions, callCredentials?: CallCredentials): SecureConnector {
    const id = options[TRANSPORT_OPTION] as unknown;
    const transport = id === undefined ? undefined : transportById(id);
    const combined = callCredentials ? this.callCredentials.compose(callCredentials) : this.callCredentials;
    const getCallCredentials = (): CallCredentials => combined;
    if (id !== undefined && !transport) {
      // Never plaintext where TLS was asked for: a subchannel whose settings are gone cannot connect.
      return {
        connect: () => Promise.reject(new Error(`sidecarless: the TLS settings ${String(id)} of this connection are no longer in force`)),
        waitForReady: () => Promise.resolve(),
        getCallCredentials,
        destroy: () => undefined,
      };
    }
    return {
      connect: (socket) => (transport ? tlsHandshake(socket, transport) : Promise.resolve({ socket, secure: false })),
      waitForReady: () => Promise.resolve(),
      getCallCredentials,
      destroy: () => undefined,
    };
  }
}

import type { KubeServicePort } from '../types.js';

/** Istio's protocols by port-name prefix or appProtocol (the ones that change how we connect matter most). */
const PROTOCOLS: Readonly<Record<string, string>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  https: 'HTTPS',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  tcp: 'TCP',
  tls: 'TLS',
  mongo: 'MONGO',
  mysql: 'MYSQL',
  redis: 'REDIS',
  udp: 'UDP',
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

/**
 * The protocol istiod gives a Service port: `appProtocol`, else the port name's prefix
 * (`grpc-api`, `http2`, `grpc-web-x`); undefined when neither says (protocol sniffing in Istio).
 */
export function servicePortProtocol(port: KubeServicePort): string | undefined {
  if (port.appProtocol !== undefined) {
    const p = PROTOCOLS[port.appProtocol.toLowerCase()];
    if (p !== undefined) return p;
  }
  const name = port.name?.toLowerCase();
  if (!name) return undefined;
  if (name === 'grpc-web' || name.startsWith('grpc-web-')) return 'GRPC-WEB';
  const dash = name.indexOf('-');
  return PROTOCOLS[dash < 0 ? name : name.slice(0, dash)];
}

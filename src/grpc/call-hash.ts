import type { Metadata } from '@grpc/grpc-js';
import { hashKey } from '../balancer/index.js';
import type { HashOn } from '../config/compile/load-balancing.js';

/** A metadata key's text values, joined as HTTP/2 would carry repeated headers. */
function textOf(metadata: Metadata, name: string): string | undefined {
  const values = metadata.get(name);
  if (values.length === 0) return undefined;
  if (values.length === 1) return typeof values[0] === 'string' ? values[0] : undefined;
  const text = values.filter((v): v is string => typeof v === 'string');
  return text.length === 0 ? undefined : text.join(',');
}

/** A cookie's value in the `cookie` metadata (`a=1; b=2`), if sent. */
function cookieOf(metadata: Metadata, name: string): string | undefined {
  const header = textOf(metadata, 'cookie');
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The hash key of a call for the DestinationRule's `consistentHash`, from the metadata the call
 * sends (Envoy hashes the request headers a gRPC call's metadata is): `httpHeaderName`, the
 * `httpCookie` when the caller sends it (a call never gets a cookie issued: grpc-js has no cookie
 * jar), `useSourceIp` (one key: every call comes from this workload). A gRPC call has no query,
 * so `httpQueryParameterName` hashes nothing; without a key the ring picks at random, as Envoy.
 */
export function callHash(on: HashOn, metadata: Metadata): number | undefined {
  switch (on.kind) {
    case 'header': {
      const value = textOf(metadata, on.name);
      return value === undefined ? undefined : hashKey(value);
    }
    case 'cookie': {
      const value = cookieOf(metadata, on.name);
      return value === undefined ? undefined : hashKey(value);
    }
    case 'source-ip':
      return hashKey('source-ip');
    case 'query':
      return undefined;
  }
}

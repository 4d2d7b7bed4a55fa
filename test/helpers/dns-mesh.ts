import { expect } from 'vitest';
import { kubernetesSearchDomains } from '../../src/discovery/dns/index.js';
import type { Mesh, MeshDnsOptions, MeshEvents } from '../../src/index.js';
import type { Dnsmasq } from './dnsmasq.js';
import type { PodReply } from './pods.js';

/** The mesh's DNS pointed at `server` as a pod of namespace `shop` would be. */
export function dnsOptions(server: Dnsmasq, extra: MeshDnsOptions = {}): MeshDnsOptions {
  return {
    servers: [server.server],
    resolvConfPath: '/nonexistent/resolv.conf',
    search: kubernetesSearchDomains('shop'),
    ndots: 5,
    // Long enough for a dnsmasq on a loaded CI machine (a stopped server is refused at once).
    timeoutMs: 2_000,
    attempts: 1,
    ...extra,
  };
}

/** One request through the mesh: status, body, and the pod's reply when a pod answered. */
export async function get(m: Mesh, url: string, headers: Record<string, string> = {}) {
  const res = await m.request(url, { headers });
  const text = await res.body.text();
  const reply = res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as PodReply) : undefined;
  return { status: res.statusCode, text, reply };
}

/** `n` requests, each expected to succeed; how many each pod answered. */
export async function countPods(m: Mesh, url: string, n: number, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const { status, reply, text } = await get(m, url, headers);
    expect(status, text).toBe(200);
    counts.set(reply!.pod, (counts.get(reply!.pod) ?? 0) + 1);
  }
  return counts;
}

/** The next `event` of the mesh that satisfies `predicate`; no timing is asserted, the timeout only ends a hung test. */
export function nextEvent<E extends 'dnsChange' | 'dnsError'>(
  m: Mesh,
  event: E,
  predicate: (payload: MeshEvents[E][0]) => boolean,
  timeoutMs = 15_000,
): Promise<MeshEvents[E][0]> {
  return new Promise((resolve, reject) => {
    const listener = (payload: MeshEvents[E][0]): void => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      m.off(event, listener as never);
      resolve(payload);
    };
    const timer = setTimeout(() => {
      m.off(event, listener as never);
      reject(new Error(`no matching ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    m.on(event, listener as never);
  });
}

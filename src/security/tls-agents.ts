import { Agent } from 'undici';
import { tlsConnector } from './tls-connect.js';
import type { TlsOrigination } from './tls-settings.js';

/** undici's own connect timeout, for pass-through connections (no cluster policy applies). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Pass-through agents that originate a DestinationRule's TLS (destinations without endpoints of
 * their own: resolution NONE, a host no ServiceEntry declares), one per TLS settings, so a rule
 * change never reuses a connection made under other settings. HTTP/1.1, as Istio speaks to a
 * port not declared HTTP/2.
 */
export class TlsAgents {
  private agents = new Map<string, Agent>();

  get(tls: TlsOrigination): Agent {
    let agent = this.agents.get(tls.id);
    if (!agent) {
      agent = new Agent({ connect: tlsConnector(tls, { timeoutMs: CONNECT_TIMEOUT_MS, allowH2: false }), allowH2: false });
      this.agents.set(tls.id, agent);
    }
    return agent;
  }

  /** Starts over (a new snapshot): the current agents finish what they carry, then close. */
  reset(): void {
    if (this.agents.size === 0) return;
    const old = this.agents;
    this.agents = new Map();
    for (const agent of old.values()) void agent.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    const old = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(old.map((a) => a.close().catch(() => undefined)));
  }

  async destroy(): Promise<void> {
    const old = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(old.map((a) => a.destroy().catch(() => undefined)));
  }
}

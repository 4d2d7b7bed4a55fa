import { Agent } from 'undici';
import { meshTlsRefusal } from '../security/mesh-tls.js';
import type { MeshTls } from '../security/mesh-tls.js';
import { meshTlsCredentials } from '../security/mesh-tls.js';
import { meshTlsConnector } from './mesh-tls-connect.js';
import { tlsConnector } from './tls-connect.js';
import type { TlsOrigination } from '../security/tls-settings.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';

/** undici's own connect timeout, for pass-through connections (no cluster policy applies). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Pass-through agents that originate a DestinationRule's TLS (destinations without endpoints of
 * their own: resolution NONE, a host no ServiceEntry declares), one per TLS settings, so a rule
 * change never reuses a connection made under other settings; for ISTIO_MUTUAL one per settings
 * and workload certificate, so a rotation never does either. HTTP/1.1, as Istio speaks to a
 * port not declared HTTP/2.
 */
export class TlsAgents {
  private agents = new Map<string, Agent>();
  /** ISTIO_MUTUAL settings id → the key of its agent now (the certificate it was made with). */
  private readonly meshKeys = new Map<string, string>();

  constructor(private readonly certificates?: WorkloadCertificates) {}

  /**
   * The agent for `tls`. For ISTIO_MUTUAL without workload certificates it throws the
   * {@link meshTlsRefusal} (check {@link refusal} first: nothing must be sent).
   */
  get(tls: TlsOrigination | MeshTls): Agent {
    if (tls.kind === 'mesh') return this.meshAgent(tls);
    let agent = this.agents.get(tls.id);
    if (!agent) {
      agent = new Agent({ connect: tlsConnector(tls, { timeoutMs: CONNECT_TIMEOUT_MS, allowH2: false }), allowH2: false });
      this.agents.set(tls.id, agent);
    }
    return agent;
  }

  /** Why a request under `tls` cannot be sent now (mesh mTLS without certificates). */
  refusal(tls: TlsOrigination | MeshTls, destination: string): Error | undefined {
    return tls.kind === 'mesh' ? meshTlsRefusal(tls, destination, this.certificates) : undefined;
  }

  private meshAgent(tls: MeshTls): Agent {
    const bundle = this.certificates?.current;
    if (!bundle) throw meshTlsRefusal(tls, tls.sni, this.certificates) ?? new Error('no workload certificates');
    const credentials = meshTlsCredentials(tls, bundle);
    let agent = this.agents.get(credentials.id);
    if (agent) return agent;
    // A rotation: the agent made with the previous certificate finishes what it carries.
    const previous = this.meshKeys.get(tls.id);
    const old = previous === undefined ? undefined : this.agents.get(previous);
    if (old && previous !== undefined) {
      this.agents.delete(previous);
      void old.close().catch(() => undefined);
    }
    agent = new Agent({ connect: meshTlsConnector(credentials, { timeoutMs: CONNECT_TIMEOUT_MS, allowH2: false }), allowH2: false });
    this.agents.set(credentials.id, agent);
    this.meshKeys.set(tls.id, credentials.id);
    return agent;
  }

  /** Starts over (a new snapshot): the current agents finish what they carry, then close. */
  reset(): void {
    if (this.agents.size === 0) return;
    const old = this.agents;
    this.agents = new Map();
    this.meshKeys.clear();
    for (const agent of old.values()) void agent.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    const old = [...this.agents.values()];
    this.agents.clear();
    this.meshKeys.clear();
    await Promise.all(old.map((a) => a.close().catch(() => undefined)));
  }

  async destroy(): Promise<void> {
    const old = [...this.agents.values()];
    this.agents.clear();
    this.meshKeys.clear();
    await Promise.all(old.map((a) => a.destroy().catch(() => undefined)));
  }
}

import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { writeCertificateDirectory } from '../../src/security/dev-ca/write-layout.js';
import { send } from '../helpers/mtls-client.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

function policy(name: string, namespace: string, spec: string, created?: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${namespace}${created ? `, creationTimestamp: "${created}"` : ''} }
spec:
${spec}
---
`;
}

/**
 * The workload is `app: reviews` in namespace `shop` (root namespace istio-system), serving on
 * two ports, A and B. Each case pushes PeerAuthentications and observes each port's behaviour
 * with real clients: STRICT serves mTLS and refuses plaintext, PERMISSIVE serves both, DISABLE
 * serves plaintext only.
 */
describe('PeerAuthentication precedence, as seen by clients', () => {
  const ca = DevCa.create();
  const client = ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });
  let dir: string;
  let mesh: Mesh;
  let source: PushSource;
  let servers: Server[];
  let a: number;
  let b: number;

  beforeAll(async () => {
    dir = await makeTempDir();
    await writeCertificateDirectory(dir, 'istio', ca.issue({ namespace: 'shop', serviceAccount: 'reviews', ips: ['127.0.0.1'] }));
    source = new PushSource([]);
    mesh = await createMesh({ namespace: 'shop', labels: { app: 'reviews', version: 'v1' }, certificates: { directory: dir }, dns: false, sources: [source] });
    servers = [mesh.createServer((_req, res) => res.end('ok')), mesh.createServer((_req, res) => res.end('ok'))];
    for (const server of servers) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    [a, b] = servers.map((s) => (s.address() as AddressInfo).port) as [number, number];
  });
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await mesh.close();
    await removeTempDir(dir);
  });

  async function apply(yaml: string): Promise<void> {
    const applied = once(mesh, 'snapshot');
    source.push(yamlDocs(yaml.replaceAll('PORT_A', String(a)).replaceAll('PORT_B', String(b))));
    await applied;
  }

  async function observed(port: number): Promise<Mode | string> {
    const tls = (await send(port, true, { ca: ca.certificatePem, identity: client })).ok;
    const plain = (await send(port, false)).ok;
    if (tls && !plain) return 'STRICT';
    if (tls && plain) return 'PERMISSIVE';
    if (!tls && plain) return 'DISABLE';
    return 'nothing served';
  }

  async function expectModes(yaml: string, modeA: Mode, modeB: Mode = modeA): Promise<void> {
    await apply(yaml);
    expect([await observed(a), await observed(b)]).toEqual([modeA, modeB]);
  }

  it('no policy: PERMISSIVE, as in Istio', async () => {
    await expectModes('', 'PERMISSIVE');
  });

  it('a mesh-wide policy (root namespace, no selector) applies', async () => {
    await expectModes(policy('default', 'istio-system', '  mtls: { mode: STRICT }'), 'STRICT');
  });

  it('a namespace-wide policy overrides the mesh-wide one; UNSET inherits it', async () => {
    const mesh = policy('default', 'istio-system', '  mtls: { mode: STRICT }');
    await expectModes(mesh + policy('default', 'shop', '  mtls: { mode: PERMISSIVE }'), 'PERMISSIVE');
    await expectModes(mesh + policy('default', 'shop', '  mtls: { mode: UNSET }'), 'STRICT');
    await expectModes(mesh + policy('default', 'shop', '  selector: { matchLabels: {} }'), 'STRICT');
  });

  it('a workload policy (selector matching the labels) overrides the namespace one', async () => {
    await expectModes(
      policy('default', 'istio-system', '  mtls: { mode: PERMISSIVE }') +
        policy('default', 'shop', '  mtls: { mode: STRICT }') +
        policy('reviews', 'shop', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: DISABLE }'),
      'DISABLE',
    );
  });

  it('portLevelMtls overrides the workload mode for its port; an UNSET port inherits', async () => {
    await expectModes(
      policy('default', 'shop', '  mtls: { mode: DISABLE }') +
        policy(
          'reviews',
          'shop',
          '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: PERMISSIVE }\n  portLevelMtls:\n    "PORT_A": { mode: STRICT }\n    "PORT_B": { mode: UNSET }',
        ),
      'STRICT',
      'PERMISSIVE',
    );
    // The workload's own mode is UNSET: it inherits the namespace's, and so does the UNSET port.
    await expectModes(
      policy('default', 'shop', '  mtls: { mode: STRICT }') +
        policy(
          'reviews',
          'shop',
          '  selector: { matchLabels: { app: reviews } }\n  portLevelMtls:\n    "PORT_A": { mode: DISABLE }\n    "PORT_B": { mode: UNSET }',
        ),
      'DISABLE',
      'STRICT',
    );
  });

  it('ignores policies that do not select this workload: other labels, other namespaces, selectors in the root namespace', async () => {
    await expectModes(
      policy('ratings', 'shop', '  selector: { matchLabels: { app: ratings } }\n  mtls: { mode: STRICT }') +
        policy('default', 'payments', '  mtls: { mode: STRICT }') +
        policy('reviews-everywhere', 'istio-system', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: STRICT }'),
      'PERMISSIVE',
    );
  });

  it('among policies of one scope the oldest wins', async () => {
    await expectModes(
      policy('newer', 'shop', '  mtls: { mode: STRICT }', '2026-01-02T00:00:00Z') +
        policy('older', 'shop', '  mtls: { mode: DISABLE }', '2025-01-01T00:00:00Z'),
      'DISABLE',
    );
    await expectModes(
      policy('a', 'shop', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: PERMISSIVE }', '2026-03-01T00:00:00Z') +
        policy('b', 'shop', '  selector: { matchLabels: { version: v1 } }\n  mtls: { mode: STRICT }', '2026-02-01T00:00:00Z'),
      'STRICT',
    );
  });
});

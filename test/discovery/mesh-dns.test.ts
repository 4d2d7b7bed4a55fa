import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { DnsEndpointSource } from '../../src/discovery/dns/index.js';
import { createMeshDnsSource } from '../../src/discovery/dns/index.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

describe('the mesh DNS source', () => {
  let dir: string | undefined;
  let source: DnsEndpointSource | undefined;
  afterEach(async () => {
    source?.close();
    source = undefined;
    await removeTempDir(dir);
    dir = undefined;
  });

  async function resolvConf(text: string): Promise<string> {
    dir = await makeTempDir();
    const path = join(dir, 'resolv.conf');
    await writeFile(path, text);
    return path;
  }

  it('outside a pod (no search line) searches as a pod of the mesh namespace would', async () => {
    const path = await resolvConf('nameserver 127.0.0.1\n');
    source = createMeshDnsSource({ resolvConfPath: path }, 'shop', 'corp.local', systemClock);
    expect(source.resolvConf.search).toEqual(['shop.svc.corp.local', 'svc.corp.local', 'corp.local']);
    expect(source.resolvConf.ndots).toBe(1);
  });

  it("inside a pod keeps resolv.conf's search list and ndots; options override each field", async () => {
    const path = await resolvConf('nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
    source = createMeshDnsSource({ resolvConfPath: path }, 'other', 'cluster.local', systemClock);
    expect(source.resolvConf).toMatchObject({
      nameservers: ['10.96.0.10'],
      search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      ndots: 5,
    });
    source.close();
    source = createMeshDnsSource(
      { resolvConfPath: path, servers: ['127.0.0.1:5353'], search: ['example.test'], ndots: 2, timeoutMs: 100, attempts: 1 },
      'other',
      'cluster.local',
      systemClock,
    );
    expect(source.resolvConf).toEqual({ nameservers: ['127.0.0.1:5353'], search: ['example.test'], ndots: 2, timeoutMs: 100, attempts: 1 });
  });
});

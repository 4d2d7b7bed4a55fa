import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  applyResolvConfOverrides,
  kubernetesSearchDomains,
  parseResolvConf,
  readResolvConf,
  RESOLV_CONF_DEFAULTS,
} from '../../src/discovery/dns/resolv-conf.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

describe('parseResolvConf', () => {
  it('reads a pod resolv.conf as kubelet writes it', () => {
    const conf = parseResolvConf(['search shop.svc.cluster.local svc.cluster.local cluster.local', 'nameserver 10.96.0.10', 'options ndots:5', ''].join('\n'));
    expect(conf).toEqual({
      nameservers: ['10.96.0.10'],
      search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      ndots: 5,
      timeoutMs: 5000,
      attempts: 2,
    });
  });

  it('gives glibc defaults for an empty file', () => {
    expect(parseResolvConf('')).toEqual(RESOLV_CONF_DEFAULTS);
    expect(parseResolvConf('').nameservers).toEqual(['127.0.0.1']);
  });

  it('keeps the first three servers, and the last search or domain line', () => {
    const conf = parseResolvConf(
      [
        '# comment',
        'nameserver 10.0.0.1 ; trailing comment',
        'nameserver 10.0.0.2',
        'nameserver ::1',
        'nameserver 10.0.0.4',
        'search a.example b.example',
        'domain corp.example',
      ].join('\n'),
    );
    expect(conf.nameservers).toEqual(['10.0.0.1', '10.0.0.2', '::1']);
    expect(conf.search).toEqual(['corp.example']);
    expect(parseResolvConf('domain corp.example\nsearch A.example. b.example a.example').search).toEqual(['a.example', 'b.example']);
  });

  it('reads options, clamped to glibc limits, and ignores unknown ones', () => {
    const conf = parseResolvConf('options rotate ndots:20 timeout:2 attempts:9 edns0 ndots:bad\noptions timeout:60');
    expect(conf.ndots).toBe(15);
    expect(conf.timeoutMs).toBe(30_000);
    expect(conf.attempts).toBe(5);
    expect(parseResolvConf('options timeout:0 attempts:0').timeoutMs).toBe(1000);
    expect(parseResolvConf('options timeout:0 attempts:0').attempts).toBe(1);
    expect(parseResolvConf('options ndots:0').ndots).toBe(0);
  });
});

describe('readResolvConf', () => {
  let dir: string | undefined;
  afterEach(async () => {
    await removeTempDir(dir);
    dir = undefined;
  });

  it('reads a file, and falls back to defaults when it is missing', async () => {
    dir = await makeTempDir();
    const path = join(dir, 'resolv.conf');
    await writeFile(path, 'nameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n');
    expect(readResolvConf(path)).toMatchObject({ nameservers: ['192.0.2.53'], search: ['example.test'], ndots: 2 });
    expect(readResolvConf(join(dir, 'missing'))).toEqual(RESOLV_CONF_DEFAULTS);
  });
});

describe('applyResolvConfOverrides', () => {
  it('replaces only the fields that are set', () => {
    const base = parseResolvConf('nameserver 10.0.0.1\nsearch a.example\noptions ndots:5 timeout:3');
    expect(applyResolvConfOverrides(base, {})).toEqual(base);
    expect(applyResolvConfOverrides(base, { nameservers: ['127.0.0.1:5353'], search: ['.b.example.'], ndots: 1 })).toEqual({
      nameservers: ['127.0.0.1:5353'],
      search: ['b.example'],
      ndots: 1,
      timeoutMs: 3000,
      attempts: 2,
    });
    // An empty server list would leave nothing to ask: it keeps resolv.conf's.
    expect(applyResolvConfOverrides(base, { nameservers: [] }).nameservers).toEqual(['10.0.0.1']);
    expect(applyResolvConfOverrides(base, { search: [] }).search).toEqual([]);
  });
});

describe('kubernetesSearchDomains', () => {
  it('is the search list kubelet gives a pod', () => {
    expect(kubernetesSearchDomains('shop')).toEqual(['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
    expect(kubernetesSearchDomains('shop', 'corp.internal.')).toEqual(['shop.svc.corp.internal', 'svc.corp.internal', 'corp.internal']);
  });
});

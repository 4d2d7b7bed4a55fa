import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'tsup';
import type { Options } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tsupConfig from '../../tsup.config.js';
import { Pods } from '../helpers/pods.js';

/**
 * The ESM/CJS dual-package hazard: an ESM application whose CommonJS dependency also requires
 * sidecarless loads dist/index.js and dist/index.cjs into one process. Their shared state (the
 * deadline, error classes for `instanceof`, the balancer registry) must be one. The library is
 * built here with the package's own tsup options into a directory of this test (dist/ may be
 * stale, or rebuilt by another test meanwhile), then probed by a plain Node process.
 */
const root = resolve(import.meta.dirname, '../..');
const outDir = resolve(root, '.tmp/dual-package');
let pods: Pods;
let probe: Record<string, unknown>;

beforeAll(async () => {
  // The ESM build (split into chunks) and the CJS build are two entries of the config, in order.
  const [esm, cjs] = tsupConfig as Options[];
  for (const library of [esm!, cjs!]) await build({ ...library, outDir, dts: false, sourcemap: false, silent: true, config: false });
  pods = await Pods.start(['127.0.0.2']);
  const { stdout } = await promisify(execFile)(process.execPath, [resolve(import.meta.dirname, 'dual-package-probe.mjs'), outDir, String(pods.port)], {
    cwd: root,
  });
  probe = JSON.parse(stdout) as Record<string, unknown>;
}, 120_000);

afterAll(async () => {
  await pods?.close();
});

describe('one process, both builds', () => {
  it('really loads two copies of the library', () => {
    expect(probe.twoBuilds).toBe(true);
  });

  it('runWithDeadline through one build is the deadline the other build reads', () => {
    expect(probe.esmDeadlineSeenByCjs).toEqual(expect.any(Number));
    expect(probe.esmDeadlineSeenByCjs as number).toBeGreaterThan(0);
    expect(probe.esmDeadlineSeenByCjs as number).toBeLessThanOrEqual(5_000);
    expect(probe.cjsDeadlineSeenByEsm as number).toBeGreaterThan(0);
    expect(probe.noDeadlineOutside).toBe(true);
  });

  it('a mesh of the CJS build honours a deadline set through the ESM build (504, flag UT)', () => {
    expect(probe.withoutDeadline).toEqual({ status: 200, body: true });
    expect(probe.expiredEsmDeadlineCjsMesh).toEqual({ status: 504, body: 'deadline exceeded', flags: 'UT' });
  });

  it("an error from one build's mesh is instanceof the other build's class and base, and of no other class", () => {
    const none = { MeshClosedError: false, MeshConfigError: false, InvalidRequestError: false, DnsLookupError: false };
    expect(probe.unknownHostFromEsm).toEqual({
      code: 'ERR_MESH_UNKNOWN_HOST',
      esm: { ...none, MeshError: true, UnknownHostError: true },
      cjs: { ...none, MeshError: true, UnknownHostError: true },
    });
    expect(probe.configErrorFromCjs).toEqual({
      code: 'ERR_MESH_CONFIG',
      esm: { ...none, MeshError: true, UnknownHostError: false, MeshConfigError: true },
      cjs: { ...none, MeshError: true, UnknownHostError: false, MeshConfigError: true },
    });
    expect(probe.closedFromCjs).toEqual({
      code: 'ERR_MESH_CLOSED',
      esm: { ...none, MeshError: true, UnknownHostError: false, MeshClosedError: true },
    });
    expect(probe.plainErrorIsNoMeshError).toBe(true);
  });

  it('a balancer policy registered through one build is known to the other', () => {
    expect(probe.policyRegisteredInEsmSeenByCjs).toBe(true);
  });
});

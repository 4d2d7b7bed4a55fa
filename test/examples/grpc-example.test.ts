import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-package.js';

/** `npm run example:grpc` as the README runs it (on the built package), its output checked line by line. */
const root = resolve(import.meta.dirname, '../..');
let output = '';
let exitCode: number | null = null;

beforeAll(async () => {
  ensureBuilt();
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['examples/grpc/run.mjs'], { cwd: root, timeout: 60_000 });
    output = stdout;
    exitCode = 0;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    output = `${failed.stdout ?? ''}${failed.stderr ?? ''}`;
    exitCode = failed.code ?? -1;
  }
}, 180_000);

describe('examples/grpc: a gRPC client and two services through the mesh, mTLS on every hop', () => {
  it('ends with ok: every check of the example held', () => {
    expect(output).toMatch(/\[grpc\] ok\n$/);
    expect(exitCode).toBe(0);
  });

  it('splits by the VirtualService weights and retries UNAVAILABLE on another pod, with no failure at the client', () => {
    const split = /canary split: v1 (\d+), v2 (\d+)/.exec(output);
    expect(split).not.toBeNull();
    expect(Number(split![1]) + Number(split![2])).toBe(100);
    expect(Number(split![2])).toBeGreaterThan(5);
    expect(Number(split![2])).toBeLessThan(40);
    expect(output).toMatch(/the flaky v1 pod answered UNAVAILABLE [1-9]\d* times; calls that failed at the frontend: 0\n/);
  });

  it("propagates the frontend's deadline across two hops and authenticates each hop by mTLS", () => {
    const left = /names, two hops away, had (\d+) ms of the frontend's 3000 left/.exec(output);
    expect(Number(left?.[1])).toBeGreaterThan(0);
    expect(Number(left?.[1])).toBeLessThanOrEqual(3000);
    expect(output).toContain('identities: greeter saw spiffe://cluster.local/ns/shop/sa/frontend; names saw spiffe://cluster.local/ns/shop/sa/greeter');
    expect(output).toContain('frontend calling names directly: PERMISSION_DENIED (RBAC: access denied)');
  });

  it('answers grpc.health.v1 through the mesh', () => {
    expect(output).toContain('health: example.Greeter SERVING (grpc.health.v1, asked through the mesh)');
  });
});

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-package.js';
import { withShopPort } from '../helpers/shop-port.js';

/** The built package, run as an application runs it: the OTel example, and without the API. */
const root = resolve(import.meta.dirname, '../..');

beforeAll(ensureBuilt, 120_000);

function run(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env, METRICS_PORT: '0' }, timeout: 60_000 });
}

describe('examples/otel/traced-shop.mjs (sdk-node wiring)', () => {
  it("prints the mesh's own spans and Istio metrics from its Prometheus endpoint", async () => {
    const out = await withShopPort(() => run(['examples/otel/traced-shop.mjs']));
    expect(out).toMatch(/client spans \(the mesh's own\)/);
    expect(out).toMatch(/\[sidecarless\] sidecarless\.route=canary/);
    expect(out).toMatch(/reviews v1 response_code=200 response_flags=- -> \d+/);
  }, 60_000);

  it("with instrumentation-undici: its spans, enriched with the mesh's attributes", async () => {
    const out = await withShopPort(() => run(['examples/otel/traced-shop.mjs', '--with-undici']));
    expect(out).toMatch(/\[@opentelemetry\/instrumentation-undici\] sidecarless\.route=canary/);
    expect(out).not.toMatch(/\[sidecarless\]/);
  }, 60_000);
});

describe('without @opentelemetry/api installed (an optional peer)', () => {
  it('the mesh loads and routes, sending no trace context', () => {
    const out = run(['test/telemetry/fixtures/without-otel-api.mjs', resolve(root, 'dist/index.js')]);
    expect(JSON.parse(out)).toEqual({ apiLoadable: false, status: 200, body: 'traceparent=none' });
  }, 60_000);
});

import { SpanKind } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';
import { meshOf, reviews } from './fixtures.js';

/**
 * The mesh looks for a registered SDK without a clock read per request (a timer marks the next
 * look due); an SDK registered after the mesh started must still be found while requests flow.
 */
let pods: Pods;
let mesh: Mesh;
let otel: OtelHarness | undefined;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]'));
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
  await otel?.shutdown();
});

async function get(): Promise<number> {
  const res = await mesh.request(`http://reviews:${pods.port}/late`);
  await res.body.dump();
  return res.statusCode;
}

describe('an OpenTelemetry SDK registered after createMesh', () => {
  it('is picked up while requests flow: their client spans and duration metric appear', async () => {
    expect(await get()).toBe(200);
    otel = new OtelHarness();
    const harness = otel;
    const clientSpans = () => harness.spans().filter((s) => s.kind === SpanKind.CLIENT && s.attributes['url.full'] === `http://reviews:${pods.port}/late`);
    // Each poll sends one request; the look at the providers is due at most a second later.
    await vi.waitFor(
      async () => {
        expect(await get()).toBe(200);
        expect(clientSpans().length).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(clientSpans()[0]!.attributes['server.address']).toBe('reviews');
    const durations = await harness.metric('http.client.request.duration');
    expect(durations.length).toBeGreaterThan(0);
  });
});

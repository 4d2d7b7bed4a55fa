import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshConfigError, MeshLogger } from '../../src/index.js';
import { consoleLogger, createMesh, MESH_LOG_EVENTS } from '../../src/index.js';
import { TestClock } from '../helpers/test-clock.js';
import { Pods } from '../helpers/pods.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';
import { reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';

let pods: Pods;
const failing = new Set<string>();
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  pods.behave = (req, res, pod) => {
    if (!failing.has(pod)) return false;
    req.resume();
    res.writeHead(503).end('failing');
    return true;
  };
});
afterAll(() => pods.close());

let mesh: Mesh | undefined;
afterEach(async () => {
  failing.clear();
  await mesh?.close();
  mesh = undefined;
});

/** Without retries; a `perTryTimeout` makes a retry policy (an invalid one when it is below 1ms). */
const config = (perTryTimeout?: string) => `
${reviewsServiceEntry(pods.port, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 10s, maxEjectionPercent: 50 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }], retries: ${perTryTimeout === undefined ? '{ attempts: 0 }' : `{ attempts: 1, perTryTimeout: ${perTryTimeout} }`} }]
`;

interface Line {
  readonly level: keyof MeshLogger;
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

/** A logger that keeps what it is told, in pino's (object, message) shape. */
function recorder(): MeshLogger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: keyof MeshLogger) => (obj: object, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function rejectBadChange(source: PushSource): Promise<void> {
  const rejected = new Promise<MeshConfigError>((r) => mesh!.once('configRejected', r));
  source.push(yamlDocs(config('soon')));
  await rejected;
}

describe('structured events through a logger', () => {
  it('logs the accepted configuration at startup and a rejected change with its resource and field path', async () => {
    const logger = recorder();
    const source = new PushSource(yamlDocs(config()));
    mesh = await createMesh({ namespace: 'shop', sources: [source], dns: false, logger });
    expect(logger.lines).toEqual([
      {
        level: 'info',
        obj: { event: 'config.accepted', version: 1, sources: ['push'], resources: { ServiceEntry: 1, DestinationRule: 1, VirtualService: 1 }, warnings: 0 },
        msg: 'configuration accepted: snapshot 1 serves (3 resources)',
      },
    ]);

    await rejectBadChange(source);
    const rejected = logger.lines.find((l) => l.obj.event === 'config.rejected');
    expect(rejected?.level).toBe('error');
    expect(rejected?.msg).toMatch(/^configuration change rejected, snapshot 1 keeps serving: 1 error/);
    expect(rejected?.obj.issues).toEqual([
      expect.objectContaining({
        resource: { kind: 'VirtualService', namespace: 'shop', name: 'reviews' },
        path: 'spec.http[0].retries.perTryTimeout',
        location: 'push[2]',
      }),
    ]);
    // Every logged event name is one of the documented ones.
    for (const line of logger.lines) expect(MESH_LOG_EVENTS).toContain(line.obj.event);
  });

  it('logs an ejection and the return', async () => {
    const logger = recorder();
    const clock = new TestClock();
    mesh = await createMesh({ namespace: 'shop', sources: [new PushSource(yamlDocs(config()))], dns: false, logger, clock, random: seededRandom(1) });
    failing.add('127.0.0.2');
    for (let i = 0; i < 2; i++) await (await mesh.request(`http://reviews:${pods.port}/`)).body.dump();
    const ejected = logger.lines.find((l) => l.obj.event === 'endpoint.ejected');
    expect(ejected).toMatchObject({
      level: 'warn',
      obj: {
        host: 'reviews.shop.svc.cluster.local',
        port: pods.port,
        endpoint: `127.0.0.2:${pods.port}`,
        reason: 'consecutive-5xx',
        ejections: 1,
        durationMs: 10_000,
      },
    });
    clock.advance(11_000);
    expect(logger.lines.find((l) => l.obj.event === 'endpoint.returned')).toMatchObject({ level: 'info', obj: { endpoint: `127.0.0.2:${pods.port}` } });
  });

  it('logs a breaker opening, with the state in the inspection too', async () => {
    const logger = recorder();
    mesh = await createMesh({
      namespace: 'shop',
      sources: [new PushSource(yamlDocs(config()))],
      dns: false,
      logger,
      breakers: { reviews: { volumeThreshold: 2, errorThresholdPercentage: 50 } },
    });
    failing.add('127.0.0.2');
    failing.add('127.0.0.3');
    for (let i = 0; i < 2; i++) await (await mesh.fetch(`http://reviews:${pods.port}/`)).arrayBuffer();
    expect(logger.lines.find((l) => l.obj.event === 'breaker.changed')).toEqual({
      level: 'warn',
      obj: { event: 'breaker.changed', host: 'reviews.shop.svc.cluster.local', state: 'open' },
      msg: 'breaker of reviews.shop.svc.cluster.local is open',
    });
    expect(mesh.inspect().breakers).toEqual([{ host: 'reviews.shop.svc.cluster.local', state: 'open' }]);
  });

  it('works with pino as is: JSON lines with the event, the level and the message', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString('utf8').split('\n')) if (text) lines.push(JSON.parse(text) as Record<string, unknown>);
        done();
      },
    });
    const source = new PushSource(yamlDocs(config()));
    mesh = await createMesh({ namespace: 'shop', sources: [source], dns: false, logger: pino({ base: null }, stream).child({ component: 'mesh' }) });
    await rejectBadChange(source);
    // pino writes synchronously to a plain stream: both lines are there.
    expect(lines.map((l) => [l.level, l.event, l.component])).toEqual([
      [30, 'config.accepted', 'mesh'],
      [50, 'config.rejected', 'mesh'],
    ]);
    expect(lines[1]!.msg).toMatch(/^configuration change rejected/);
    expect((lines[1]!.issues as { path: string }[]).map((i) => i.path)).toEqual(['spec.http[0].retries.perTryTimeout']);
  });

  it('adapts console: message first, then the event object', async () => {
    let written = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString('utf8');
        done();
      },
    });
    const source = new PushSource(yamlDocs(config()));
    mesh = await createMesh({
      namespace: 'shop',
      sources: [source],
      dns: false,
      logger: consoleLogger(new Console({ stdout: sink, stderr: sink, colorMode: false })),
    });
    await rejectBadChange(source);
    expect(written).toMatch(/^sidecarless: configuration accepted: snapshot 1 serves \(3 resources\) \{\n?\s*event: 'config.accepted'/);
    expect(written).toMatch(
      /sidecarless: configuration change rejected, snapshot 1 keeps serving[^]*event: 'config.rejected'[^]*path: 'spec.http\[0\].retries.perTryTimeout'/,
    );
  });
});

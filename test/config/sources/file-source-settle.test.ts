import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../helpers/test-clock.js';
import { FileSource } from '../../../src/config/sources/file-source.js';
import type { SourceUpdate } from '../../../src/config/sources/source.js';
import type { Mesh, MeshConfigError } from '../../../src/index.js';
import type { Snapshot } from '../../../src/inspect/public.js';
import { createMesh } from '../../../src/index.js';
import { explain } from '../../helpers/mesh-from-yaml.js';
import { SourceUpdateRecorder } from '../../helpers/source-update-recorder.js';
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.js';

const DEBOUNCE = 50;
const SETTLE = 80;
const GRACE = 1_000;

/**
 * Virtual time for the source's debounce and settle timers: nothing waits on real time. `step`
 * runs the earliest pending timer (once one is pending), moving time to when it was due.
 */
class StepClock extends TestClock {
  /**
   * Waits for a pending timer (file reads are real I/O), then runs the earliest. False if `stop`
   * came first, or if no timer came at all (then the caller's assertions say what is missing).
   */
  async step(stop: () => boolean = () => false): Promise<boolean> {
    const giveUp = Date.now() + 5_000;
    for (;;) {
      if (stop() || Date.now() > giveUp) return false;
      const due = this.waiting[0];
      if (due) {
        this.runNext((t) => t === due);
        return true;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Runs timers until `done`. */
  async runUntil(done: () => boolean): Promise<void> {
    while (await this.step(done));
  }

  /** How many settle re-reads were scheduled: each means the source read content it held back. */
  get settleReads(): number {
    return this.scheduled.filter((t) => t.delayMs === SETTLE).length;
  }
}

const serviceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2, labels: { version: v1 } }, { address: 127.0.0.3, labels: { version: v2 } }]
`;
const destinationRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
const virtualService = (subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, subset: ${subset} }
`;
const complete = (subset: string) => [serviceEntry, destinationRule, virtualService(subset)].join('---\n');

/** Kinds of the documents an update holds, and whether it carried errors. */
const summary = (u: SourceUpdate) => ({
  kinds: u.documents.map((d) => (d.value as { kind: string }).kind),
  errors: u.issues.filter((i) => i.severity === 'error').length,
});

describe('FileSource: a file written in parts is applied once, complete', () => {
  let dir: string;
  let file: string;
  let clock: StepClock;
  let source: FileSource | undefined;
  let mesh: Mesh | undefined;

  beforeEach(async () => {
    dir = await makeTempDir();
    file = join(dir, 'reviews.yaml');
    clock = new StepClock();
  });
  afterEach(async () => {
    await mesh?.close();
    mesh = undefined;
    await source?.close();
    source = undefined;
    await removeTempDir(dir);
  });

  async function watch(): Promise<SourceUpdateRecorder> {
    const recorder = new SourceUpdateRecorder();
    source = new FileSource([dir], { debounceMs: DEBOUNCE, settleMs: SETTLE, parseGraceMs: GRACE, pollIntervalMs: 0, clock });
    await source.start(recorder.onUpdate);
    return recorder;
  }

  it('holds back a half-written file that does not parse while it is being completed', async () => {
    await writeFile(file, complete('v1'));
    const recorder = await watch();

    // The first write stops in the middle of a mapping: the text does not parse.
    const text = complete('v2');
    const cut = text.indexOf('subset: v2') + 'subset: '.length;
    await writeFile(file, text.slice(0, cut));
    // The source reads it, and reads it again: the same broken text, held back each time.
    await clock.runUntil(() => clock.settleReads >= 2);
    expect(recorder.updates).toHaveLength(1);

    await appendFile(file, text.slice(cut));
    await clock.runUntil(() => recorder.updates.length === 2);
    expect(recorder.updates.map(summary)).toEqual([
      { kinds: ['ServiceEntry', 'DestinationRule', 'VirtualService'], errors: 0 },
      { kinds: ['ServiceEntry', 'DestinationRule', 'VirtualService'], errors: 0 },
    ]);
    const route = (recorder.latest?.documents[2]?.value as { spec: { http: { route: { destination: { subset: string } }[] }[] } }).spec;
    expect(route.http[0]!.route[0]!.destination.subset).toBe('v2');
  });

  it('does not apply the first part of a file that parses on its own, when the rest follows before the settle read', async () => {
    await writeFile(file, serviceEntry);
    const recorder = await watch();

    // The first part is valid YAML by itself (two whole documents): it must not be delivered alone.
    const parts = [serviceEntry, destinationRule].join('---\n');
    await writeFile(file, `${parts}---\n`);
    await clock.runUntil(() => clock.settleReads >= 1);
    await appendFile(file, virtualService('v2'));
    await clock.runUntil(() => recorder.updates.length === 2);
    expect(recorder.updates.map(summary)).toEqual([
      { kinds: ['ServiceEntry'], errors: 0 },
      { kinds: ['ServiceEntry', 'DestinationRule', 'VirtualService'], errors: 0 },
    ]);
  });

  it('reports a file that stays unparseable once the grace period is over', async () => {
    await writeFile(file, complete('v1'));
    const recorder = await watch();

    await writeFile(file, `${complete('v2')}  broken: [\n`);
    await clock.runUntil(() => recorder.updates.length === 2);
    expect(recorder.updates.map(summary)).toEqual([
      { kinds: ['ServiceEntry', 'DestinationRule', 'VirtualService'], errors: 0 },
      { kinds: [], errors: 1 },
    ]);
    expect(recorder.latest?.issues[0]).toMatchObject({ code: 'parse', location: { file } });
    // It was read again every settle period until then (virtual time: nothing waited).
    expect(clock.settleReads).toBeGreaterThanOrEqual(2);
    expect(clock.now()).toBeGreaterThanOrEqual(GRACE);
  });

  it('gives the mesh no rejection and one new snapshot for a file written in two parts', async () => {
    await writeFile(file, complete('v1'));
    source = new FileSource([dir], { debounceMs: DEBOUNCE, settleMs: SETTLE, parseGraceMs: GRACE, pollIntervalMs: 0, clock });
    mesh = await createMesh({ namespace: 'shop', sources: [source], dns: false, telemetry: false });
    const snapshots: Snapshot[] = [];
    const rejections: MeshConfigError[] = [];
    mesh.on('snapshot', (s) => snapshots.push(s));
    mesh.on('configRejected', (e) => rejections.push(e));
    expect(explain(mesh, 'GET', 'http://reviews/').destinations[0]?.subset).toBe('v1');

    const text = complete('v2');
    const cut = text.indexOf('subset: v2') + 'subset: '.length;
    await writeFile(file, text.slice(0, cut));
    await clock.runUntil(() => clock.settleReads >= 2);
    await appendFile(file, text.slice(cut));
    await clock.runUntil(() => snapshots.length === 1 || rejections.length > 0);

    expect(rejections).toEqual([]);
    expect(snapshots.map((s) => s.version)).toEqual([2]);
    expect(explain(mesh, 'GET', 'http://reviews/').destinations[0]?.subset).toBe('v2');
  });
});

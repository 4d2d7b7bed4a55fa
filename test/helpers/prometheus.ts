import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { systemTool } from './system-tools.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Debian's `prometheus` package (installed by `npm run setup`). */
export function prometheusBinary(): string {
  return systemTool('prometheus');
}

/** One sample of an instant-vector PromQL answer. */
export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

/**
 * A real Prometheus server scraping one target every second, with its HTTP API on loopback. It
 * keeps its data in a temporary directory removed on `stop`.
 */
export class Prometheus {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
    private output: string[],
  ) {}

  static async start(target: string): Promise<Prometheus> {
    const binary = prometheusBinary();
    const dir = await makeTempDir('sidecarless-prom-');
    const config = join(dir, 'prometheus.yml');
    await writeFile(
      config,
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: mesh\n    static_configs: [{ targets: ['${target}'] }]\n`,
    );
    const port = await freePort();
    const output: string[] = [];
    const child = spawn(binary, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (b: Buffer) => output.push(b.toString()));
    child.stderr!.on('data', (b: Buffer) => output.push(b.toString()));
    const prom = new Prometheus(child, dir, `http://127.0.0.1:${port}`, output);
    await prom.pollUntil(
      async () =>
        await fetch(`${prom.url}/-/ready`).then(
          (r) => r.ok,
          () => false,
        ),
      'Prometheus ready',
    );
    return prom;
  }

  async query(promql: string): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query failed: ${JSON.stringify(body)}`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Polls `test` every 250 ms until it holds; fails after `limitMs` with Prometheus's output. */
  async pollUntil(test: () => Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
    const started = Date.now();
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`prometheus exited (${this.child.exitCode}): ${this.output.join('')}`);
      if (await test().catch(() => false)) return;
      if (Date.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms\n${this.output.join('').slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    this.output = [];
    await removeTempDir(this.dir);
  }
}

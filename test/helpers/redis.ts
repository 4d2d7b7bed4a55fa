import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { systemTool } from './system-tools.js';

class PortInUseError extends Error {}

/**
 * A real redis-server on a free loopback port, no persistence, for tests that share rate limits
 * between meshes. Start with {@link RedisServer.start}; always {@link RedisServer.close}.
 */
export class RedisServer {
  private child: ChildProcess | undefined;
  private log = '';
  private readonly onProcessExit = (): void => {
    this.child?.kill('SIGKILL');
  };

  private constructor(public port: number) {}

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      const server = new RedisServer(20_000 + Math.floor(Math.random() * 40_000));
      try {
        await server.spawn();
        return server;
      } catch (error) {
        if (!(error instanceof PortInUseError)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /** Stops the server; connections to its port are then refused until {@link restart}. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    process.off('exit', this.onProcessExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts it again on the same port (empty: nothing is persisted). */
  async restart(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.spawn();
        return;
      } catch (error) {
        if (!(error instanceof PortInUseError) || attempt >= 20) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async close(): Promise<void> {
    await this.stop();
  }

  get output(): string {
    return this.log;
  }

  private async spawn(): Promise<void> {
    this.log = '';
    const binary = systemTool('redis-server');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'];
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const started = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        this.log = (this.log + chunk.toString('utf8')).slice(-64_000);
        if (/Ready to accept connections/.test(this.log)) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        if (/Address already in use/i.test(this.log)) reject(new PortInUseError(String(this.port)));
        else reject(new Error(`redis-server exited (${code ?? signal}) before serving:\n${this.log}`));
      });
    });
    this.child = child;
    process.on('exit', this.onProcessExit);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        started,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${this.log}`)), 10_000);
        }),
      ]);
    } catch (error) {
      this.child = undefined;
      process.off('exit', this.onProcessExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

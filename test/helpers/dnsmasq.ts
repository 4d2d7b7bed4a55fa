import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { systemTool } from './system-tools.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

/** One SRV record (`--srv-host`). */
export interface DnsmasqSrv {
  /** e.g. `_http._tcp.reviews.shop.svc.cluster.local` */
  readonly name: string;
  readonly target: string;
  readonly port: number;
  readonly priority?: number;
  readonly weight?: number;
}

/** What the server answers. */
export interface DnsmasqRecords {
  /**
   * Name to addresses (IPv4 and IPv6 mixed), served from an addn-hosts file, so they can change
   * without a restart ({@link Dnsmasq.setHosts}).
   */
  readonly hosts?: Readonly<Record<string, readonly string[]>>;
  /** SRV records; changing them restarts dnsmasq on the same port ({@link Dnsmasq.setSrv}). */
  readonly srv?: readonly DnsmasqSrv[];
}

export interface DnsmasqOptions {
  /** TTL of every answer, seconds (`--local-ttl`). Default 1. */
  readonly ttl?: number;
  /**
   * Domains answered authoritatively (`--local`): names in them that have no record get NXDOMAIN
   * (or NODATA). Names outside them get REFUSED, as there is no upstream. Default `#`: every
   * name, so an unknown name is NXDOMAIN, as a cluster DNS server with an upstream would answer.
   */
  readonly localDomains?: readonly string[];
}

/**
 * A real dnsmasq answering on a free loopback port from records a test writes, for DNS tests that
 * exercise the real resolver end to end. Start with {@link Dnsmasq.start}; always {@link close}.
 */
export class Dnsmasq {
  private child: ChildProcess | undefined;
  private log = '';
  private records: DnsmasqRecords;
  private readonly onProcessExit = (): void => {
    this.child?.kill('SIGKILL');
  };

  private constructor(
    private readonly dir: string,
    records: DnsmasqRecords,
    private readonly options: DnsmasqOptions,
    /** The UDP and TCP port the server listens on. */
    public port: number,
  ) {
    this.records = records;
  }

  /** `127.0.0.1:<port>`, for `Resolver.setServers` and the mesh's `nameservers` option. */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  private get hostsFile(): string {
    return join(this.dir, 'hosts');
  }

  /** Starts dnsmasq on a random free high port (retrying when the port is taken). */
  static async start(records: DnsmasqRecords = {}, options: DnsmasqOptions = {}): Promise<Dnsmasq> {
    const dir = await makeTempDir('sidecarless-dnsmasq-');
    // dnsmasq started as root drops to `nobody` and re-reads the hosts file as that user on SIGHUP.
    await chmod(dir, 0o755);
    const server = new Dnsmasq(dir, records, options, 0);
    try {
      await server.writeHosts();
      let lastError: unknown;
      for (let attempt = 0; attempt < 20; attempt++) {
        server.port = 20_000 + Math.floor(Math.random() * 40_000);
        try {
          await server.spawn();
          return server;
        } catch (error) {
          if (!(error instanceof PortInUseError)) throw error;
          lastError = error;
        }
      }
      throw lastError;
    } catch (error) {
      await removeTempDir(dir);
      throw error;
    }
  }

  /** Replaces the address records and waits until dnsmasq has re-read them (SIGHUP). */
  async setHosts(hosts: Readonly<Record<string, readonly string[]>>): Promise<void> {
    this.records = { ...this.records, hosts };
    await this.writeHosts();
    const child = this.child;
    if (!child) return;
    const reads = this.countReads();
    child.kill('SIGHUP');
    await this.waitFor(() => this.countReads() > reads, 'reload after SIGHUP');
  }

  /** Replaces the SRV records: restarts dnsmasq on the same port. */
  async setSrv(srv: readonly DnsmasqSrv[]): Promise<void> {
    this.records = { ...this.records, srv };
    await this.stop();
    await this.restart();
  }

  /** Stops the server (queries to its port are then refused); {@link restart} brings it back. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    process.off('exit', this.onProcessExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  /** Starts the server again on the same port, with the current records. */
  async restart(): Promise<void> {
    if (this.child) return;
    // The port was ours a moment ago; a retry covers a socket still being torn down.
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

  /** Stops the server and removes its files. */
  async close(): Promise<void> {
    await this.stop();
    await removeTempDir(this.dir);
  }

  /** What dnsmasq has logged so far (for failure messages). */
  get output(): string {
    return this.log;
  }

  /** The command line used, for documentation and debugging. */
  args(): string[] {
    const ttl = this.options.ttl ?? 1;
    const args = [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--pid-file=',
      '--log-facility=-',
      `--port=${this.port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${this.hostsFile}`,
      `--local-ttl=${ttl}`,
    ];
    for (const domain of this.options.localDomains ?? ['#']) args.push(`--local=/${domain}/`);
    for (const s of this.records.srv ?? []) {
      args.push(`--srv-host=${s.name},${s.target},${s.port},${s.priority ?? 0},${s.weight ?? 0}`);
    }
    return args;
  }

  private async writeHosts(): Promise<void> {
    const lines: string[] = [];
    for (const [name, addresses] of Object.entries(this.records.hosts ?? {})) {
      for (const address of addresses) lines.push(`${address} ${name}`);
    }
    await writeFile(this.hostsFile, lines.join('\n') + '\n');
    await chmod(this.hostsFile, 0o644);
  }

  private countReads(): number {
    return this.log.split(`read ${this.hostsFile}`).length - 1;
  }

  private async spawn(): Promise<void> {
    this.log = '';
    const binary = systemTool('dnsmasq');
    const child = spawn(binary, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString('utf8')).slice(-64_000);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    const started = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        if (/Address already in use/i.test(this.log)) reject(new PortInUseError(this.port));
        else reject(new Error(`dnsmasq exited (${code ?? signal}) before serving:\n${this.log}`));
      });
      // The hosts file is read after the listening sockets are bound.
      const check = (): void => {
        if (this.countReads() > 0) {
          child.stdout.off('data', check);
          child.stderr.off('data', check);
          resolve();
        }
      };
      child.stdout.on('data', check);
      child.stderr.on('data', check);
    });
    this.child = child;
    process.on('exit', this.onProcessExit);
    try {
      await withTimeout(started, 10_000, () => `dnsmasq did not start within 10 s:\n${this.log}`);
      await this.probe();
    } catch (error) {
      this.child = undefined;
      process.off('exit', this.onProcessExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      throw error;
    }
  }

  /** One real query, so a test never races the server's start. */
  private async probe(): Promise<void> {
    const resolver = new Resolver({ timeout: 500, tries: 4 });
    resolver.setServers([this.server]);
    try {
      await resolver.resolve4('dnsmasq-probe.test');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // NXDOMAIN / NODATA / REFUSED all prove the server answers.
      if (code !== 'ENOTFOUND' && code !== 'ENODATA' && code !== 'EREFUSED') {
        throw new Error(`dnsmasq on ${this.server} does not answer (${code}):\n${this.log}`, { cause: error });
      }
    }
  }

  private async waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`dnsmasq: no ${what} within ${timeoutMs} ms:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

class PortInUseError extends Error {
  constructor(port: number) {
    super(`port ${port} is in use`);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

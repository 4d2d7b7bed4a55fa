import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';
import { fetch } from 'undici';
import type { KubernetesOptions } from './kubernetes-options.js';
import { runningInPod, SERVICE_ACCOUNT_DIR } from './kubernetes-options.js';
import { KubernetesApiError, KubernetesConfigError } from './errors.js';
import { loadKubeClient } from './load-client.js';

/**
 * One way into the API server: where it is, who we are, the caller's namespace. Credentials and
 * TLS come from the official client's KubeConfig (kubeconfig files, exec plugins, client
 * certificates); requests go through undici so we choose the Accept header and read watch streams
 * ourselves.
 */
export class KubeAccess {
  private dispatcher: Dispatcher | undefined;
  private readonly answerListeners = new Set<() => void>();

  private constructor(
    private readonly config: KubeConfig,
    readonly server: string,
    /** The namespace of the service account, or of the kubeconfig context. */
    readonly namespace: string | undefined,
    /** In a pod: the projected token, read again for every request since kubelet rotates it. */
    private readonly tokenFile: string | undefined,
  ) {}

  static async create(options: KubernetesOptions = {}): Promise<KubeAccess> {
    const client = await loadKubeClient();
    const config = new client.KubeConfig();
    const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
    const inCluster = options.kubeconfig === undefined && options.context === undefined && (options.server !== undefined || runningInPod(dir));
    if (inCluster) {
      const server = options.server ?? inClusterServer();
      const caFile = join(dir, 'ca.crt');
      config.loadFromClusterAndUser(
        {
          name: 'in-cluster',
          server,
          caFile: existsSync(caFile) ? caFile : undefined,
          skipTLSVerify: server.startsWith('http:'),
        },
        { name: 'service-account' },
      );
      return new KubeAccess(config, server, readOptional(join(dir, 'namespace')), join(dir, 'token'));
    }
    loadKubeconfig(config, options.kubeconfig);
    if (options.context !== undefined) {
      if (!config.getContextObject(options.context)) {
        throw new KubernetesConfigError(`kubeconfig has no context named "${options.context}"`);
      }
      config.setCurrentContext(options.context);
    }
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new KubernetesConfigError('kubeconfig has no current cluster (set current-context or pass kubernetes.context)');
    const namespace = config.getContextObject(config.getCurrentContext())?.namespace;
    return new KubeAccess(config, cluster.server.replace(/\/+$/, ''), namespace, undefined);
  }

  /** GET `path` (with its query); throws KubernetesApiError unless the answer is 2xx. */
  async get(path: string, accept: string, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    let dispatcher: Dispatcher | undefined;
    // The client fills headers and a TLS dispatcher through this small part of its RequestContext.
    const context = {
      setHeaderParam: (key: string, value: string) => {
        headers[key] = value;
      },
      setDispatcher: (d: Dispatcher) => {
        dispatcher = d;
      },
    };
    await this.config.applySecurityAuthentication(context as unknown as Parameters<KubeConfig['applySecurityAuthentication']>[0]);
    if (this.tokenFile !== undefined) {
      const token = (await readFile(this.tokenFile, 'utf8').catch(() => '')).trim();
      if (token) headers['Authorization'] = `Bearer ${token}`;
    }
    // Keep one dispatcher (one connection pool); the client builds a fresh one on every call.
    this.dispatcher ??= dispatcher;
    headers['Accept'] = accept;
    const url = this.server + path;
    let response: Response;
    try {
      response = (await fetch(url, { headers, dispatcher: this.dispatcher, signal })) as unknown as Response;
    } catch (cause) {
      if (signal?.aborted) throw cause;
      throw new KubernetesApiError(`GET ${url}: ${describeFailure(cause)}`, undefined, { cause });
    }
    if (response.status < 200 || response.status > 299) {
      const text = await response.text().catch(() => '');
      throw new KubernetesApiError(`GET ${url}: ${response.status} ${statusMessage(text)}`.trimEnd(), response.status);
    }
    for (const listener of [...this.answerListeners]) listener();
    return response;
  }

  /**
   * Calls `listener` whenever the API server answers a request successfully: watches backing off
   * after an outage retry then, instead of waiting out their delays. Returns the unsubscribe.
   */
  onAnswer(listener: () => void): () => void {
    this.answerListeners.add(listener);
    return () => this.answerListeners.delete(listener);
  }

  async getJson(path: string, signal?: AbortSignal): Promise<unknown> {
    const response = await this.get(path, 'application/json', signal);
    return parseJson(await response.text(), path);
  }

  async close(): Promise<void> {
    const dispatcher = this.dispatcher;
    this.dispatcher = undefined;
    await dispatcher?.close().catch(() => undefined);
  }
}

export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new KubernetesApiError(`${what}: the API server answered with invalid JSON`);
  }
}

function inClusterServer(): string {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new KubernetesConfigError('KUBERNETES_SERVICE_HOST is not set: not in a pod (pass kubernetes.kubeconfig or kubernetes.server)');
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Loads the kubeconfig named, else the one kubectl would use (`$KUBECONFIG`, `~/.kube/config`).
 * With neither, the client would fall back to `http://localhost:8080` and fail on every call
 * later; outside a pod that is a configuration mistake, reported now.
 */
function loadKubeconfig(config: KubeConfig, file: string | undefined): void {
  const path = file ?? (process.env.KUBECONFIG || undefined);
  if (path === undefined && !existsSync(join(homedir(), '.kube', 'config'))) {
    throw new KubernetesConfigError(
      'not in a pod and no kubeconfig found: set $KUBECONFIG, create ~/.kube/config, or pass kubernetes.kubeconfig or kubernetes.server',
    );
  }
  try {
    if (file !== undefined) config.loadFromFile(file);
    else config.loadFromDefault();
  } catch (cause) {
    throw new KubernetesConfigError(`cannot load the kubeconfig ${path ?? '~/.kube/config'}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function describeFailure(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = cause.cause;
    if (inner instanceof Error) return inner.message;
    return cause.message;
  }
  return String(cause);
}

/** The `message` of a Kubernetes Status body, else the text itself (shortened). */
function statusMessage(text: string): string {
  try {
    const status = JSON.parse(text) as { message?: unknown };
    if (typeof status.message === 'string') return status.message;
  } catch {
    // Not a Status object.
  }
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

import { EventEmitter } from 'node:events';
import type { CancelTimer, MeshClock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { CertificateBundle } from './certificate-bundle.js';
import { validateBundle } from './certificate-bundle.js';
import type { CertificateSource } from './certificate-source.js';
import { CertificateError } from './errors.js';

export interface WorkloadCertificatesOptions {
  /** Quiet time after a change notification before the files are read, in ms. Default 100. */
  readonly debounceMs?: number;
  /** Watch the source and rotate on change. Default true. */
  readonly watch?: boolean;
  /**
   * Wall-clock time (`wallNow`) for validity checks and expiry, and the debounce, not-yet-valid and
   * expiry timers (background). Default the system clock.
   */
  readonly clock?: MeshClock;
}

export interface WorkloadCertificatesEvents {
  /** A bundle passed every check and is used from now on: the first one (`previous` undefined) and each rotation. */
  rotated: [bundle: CertificateBundle, previous: CertificateBundle | undefined];
  /** A new set was refused; the bundle in use, if any, stays in use. */
  rejected: [error: CertificateError];
  /**
   * The bundle in use has less than a fifth of its lifetime left and no replacement came (Istio
   * rotates at half, cert-manager at two thirds); also emitted once it has expired (`secondsLeft` <= 0).
   */
  expiring: [bundle: CertificateBundle, secondsLeft: number];
}

const DEFAULT_DEBOUNCE_MS = 100;
const EXPIRING_FRACTION = 0.2;

/**
 * The workload's certificates, kept current: read and validated from a {@link CertificateSource},
 * replaced when the source changes if, and only if, the new set passes every check (the key
 * matches the leaf, validity, chain to the roots). A set that fails is reported and the bundle in
 * use stays. Readers take {@link WorkloadCertificates.current} for each new connection, so new
 * connections use a new bundle and existing ones keep theirs until they close.
 */
export class WorkloadCertificates extends EventEmitter<WorkloadCertificatesEvents> {
  private bundle: CertificateBundle | undefined;
  private error: CertificateError | undefined;
  private stopWatching: (() => void) | undefined;
  private debounceTimer: CancelTimer | undefined;
  private expiryTimer: CancelTimer | undefined;
  private validFromTimer: CancelTimer | undefined;
  private loading: Promise<void> | undefined;
  private loadAgain = false;
  private closed = false;
  private readonly debounceMs: number;
  private readonly clock: MeshClock;

  constructor(
    readonly source: CertificateSource,
    private readonly options: WorkloadCertificatesOptions = {},
  ) {
    super();
    this.debounceMs = Math.max(0, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.clock = options.clock ?? systemClock;
  }

  /** Reads the first bundle (a failure is kept in {@link lastError}, never thrown) and starts watching. */
  async start(): Promise<void> {
    if (this.options.watch !== false && !this.stopWatching) this.stopWatching = this.source.watch(() => this.schedule());
    await this.reload();
  }

  /** The bundle in use: undefined until one passed every check. */
  get current(): CertificateBundle | undefined {
    return this.bundle;
  }

  /** Why the last set read was refused; cleared when one is accepted. */
  get lastError(): CertificateError | undefined {
    return this.error;
  }

  /** Seconds until the certificate in use expires (negative once expired). */
  secondsToExpiry(): number | undefined {
    return this.bundle && (this.bundle.notAfter.getTime() - this.clock.wallNow()) / 1000;
  }

  /** Reads and checks the source now; resolves once done (concurrent calls share one read). */
  reload(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.loading) {
      this.loadAgain = true;
      return this.loading;
    }
    this.loading = this.load().finally(() => {
      this.loading = undefined;
      if (this.loadAgain && !this.closed) {
        this.loadAgain = false;
        void this.reload();
      }
    });
    return this.loading;
  }

  close(): void {
    this.closed = true;
    this.stopWatching?.();
    this.stopWatching = undefined;
    this.debounceTimer?.();
    this.expiryTimer?.();
    this.validFromTimer?.();
  }

  private schedule(): void {
    if (this.closed) return;
    this.debounceTimer?.();
    this.debounceTimer = this.clock.schedule(this.debounceMs, () => void this.reload(), 'background');
  }

  private async load(): Promise<void> {
    let next: CertificateBundle;
    try {
      const files = await this.source.read();
      next = validateBundle(this.source.id, files, this.clock.wallNow());
    } catch (error) {
      if (this.closed) return;
      const refused =
        error instanceof CertificateError
          ? error
          : new CertificateError('unreadable', this.source.id, `reading the certificates failed: ${(error as Error).message}`, { cause: error });
      // The same problem seen again (a poll, a spurious event) is not news.
      const repeated = this.error?.message === refused.message;
      this.error = refused;
      if (!repeated) this.emit('rejected', refused);
      // Unchanged files are not read again on their own: a certificate issued a moment ahead of
      // this clock (skew) is taken once it becomes valid.
      this.validFromTimer?.();
      this.validFromTimer = undefined;
      if (refused.validFrom) {
        this.validFromTimer = this.clock.schedule(
          Math.max(0, refused.validFrom.getTime() - this.clock.wallNow()) + 1000,
          () => void this.reload(),
          'background',
        );
      }
      return;
    }
    if (this.closed) return;
    this.error = undefined;
    const previous = this.bundle;
    if (previous && previous.fingerprint === next.fingerprint && previous.keyPem === next.keyPem && previous.rootsPem === next.rootsPem) return;
    this.bundle = next;
    this.emit('rotated', next, previous);
    this.armExpiry(next);
  }

  /** `expiring` when a fifth of the lifetime is left, and again once expired. */
  private armExpiry(bundle: CertificateBundle): void {
    this.expiryTimer?.();
    const lifetime = bundle.notAfter.getTime() - bundle.notBefore.getTime();
    const due = [bundle.notAfter.getTime() - lifetime * EXPIRING_FRACTION, bundle.notAfter.getTime()];
    const fire = (): void => {
      if (this.closed || this.bundle !== bundle) return;
      const now = this.clock.wallNow();
      let crossed = false;
      while (due.length > 0 && (due[0] as number) <= now) {
        due.shift();
        crossed = true;
      }
      if (crossed) this.emit('expiring', bundle, (bundle.notAfter.getTime() - now) / 1000);
      if (due.length === 0) return;
      this.expiryTimer = this.clock.schedule((due[0] as number) - now + 1, fire, 'background');
    };
    fire();
  }
}

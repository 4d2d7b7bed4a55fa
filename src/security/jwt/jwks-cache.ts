import type { JWTVerifyGetKey } from 'jose';
import type { JoseModule } from './jose-loader.js';

/** Istio's default JWKS refresh interval (PILOT_JWT_PUB_KEY_REFRESH_INTERVAL). */
export const JWKS_REFRESH_MS = 20 * 60_000;
/** At most one fetch for unknown key ids in this time (a flood of bad tokens costs one fetch). */
const UNKNOWN_KID_COOLDOWN_MS = 1_000;

export type JwksFetch = (uri: string, timeoutMs: number) => Promise<unknown>;

/**
 * The keys behind one `jwksUri`: fetched when first needed, refreshed every 20 minutes (in the
 * background: requests keep using the keys in hand), and at once when a token names a key id
 * the set does not have (signing-key rotation). A failed fetch keeps the keys already held, so
 * an identity provider that is briefly down does not lock everyone out.
 */
export class JwksCache {
  private keys: JWTVerifyGetKey | undefined;
  private fetchedAt = -Infinity;
  private unknownKidAt = -Infinity;
  private inFlight: Promise<void> | undefined;
  /** The last fetch's error, while no keys are held. */
  lastError: Error | undefined;

  constructor(
    readonly uri: string,
    private readonly jose: JoseModule,
    private readonly fetchJson: JwksFetch,
    private readonly now: () => number,
  ) {}

  /** The key set to verify with; waits for the first fetch. Rejects only when no keys were ever fetched. */
  async keySet(timeoutMs: number): Promise<JWTVerifyGetKey> {
    if (this.keys && this.now() - this.fetchedAt < JWKS_REFRESH_MS) return this.keys;
    if (this.keys) {
      void this.refresh(timeoutMs).catch(() => undefined);
      return this.keys;
    }
    await this.refresh(timeoutMs);
    if (!this.keys) throw this.lastError ?? new Error('no JWKS');
    return this.keys;
  }

  /** A token named a key the set lacks: fetch again (at most once a second) and say whether the set changed. */
  async refreshForUnknownKey(timeoutMs: number): Promise<boolean> {
    if (this.now() - this.unknownKidAt < UNKNOWN_KID_COOLDOWN_MS) return false;
    this.unknownKidAt = this.now();
    const before = this.keys;
    await this.refresh(timeoutMs).catch(() => undefined);
    return this.keys !== before;
  }

  private refresh(timeoutMs: number): Promise<void> {
    this.inFlight ??= this.fetchJson(this.uri, timeoutMs)
      .then((json) => {
        const set = json as { keys?: unknown };
        if (typeof set !== 'object' || set === null || !Array.isArray(set.keys)) throw new Error(`${this.uri} did not return a JSON Web Key Set`);
        this.keys = this.jose.createLocalJWKSet(set as Parameters<JoseModule['createLocalJWKSet']>[0]);
        this.fetchedAt = this.now();
        this.lastError = undefined;
      })
      .catch((error: unknown) => {
        // Fetched too soon again otherwise; the keys held (if any) keep serving.
        this.fetchedAt = this.keys ? this.now() : -Infinity;
        this.lastError = error instanceof Error ? error : new Error(String(error));
        throw this.lastError;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}

import { existsSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import type { CertificateLayout } from '../../src/security/certificate-layouts.js';
import { LAYOUT_FILES } from '../../src/security/certificate-layouts.js';

/**
 * A Kubernetes Secret volume written as the kubelet's atomic writer does: the payload goes into a
 * new timestamped directory, a `..data_tmp` symlink to it is renamed over `..data`, the
 * user-visible names are symlinks through `..data`, and the previous payload directory is removed.
 */
export class SecretVolume {
  private generation = 0;
  private names: readonly string[] = [];

  constructor(readonly dir: string) {}

  /** Replaces the whole payload in one atomic swap. */
  write(files: Readonly<Record<string, string>>): void {
    const payload = `..2026_01_01_00_00_00.${String(++this.generation).padStart(9, '0')}`;
    mkdirSync(join(this.dir, payload), { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(this.dir, payload, name), text);
    const previous = existsSync(join(this.dir, '..data')) ? readlinkSync(join(this.dir, '..data')) : undefined;
    symlinkSync(payload, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      if (!existsSync(join(this.dir, name))) symlinkSync(join('..data', name), join(this.dir, name));
    }
    for (const name of this.names) if (!(name in files)) unlinkSync(join(this.dir, name));
    if (previous !== undefined) rmSync(join(this.dir, previous), { recursive: true });
    this.names = Object.keys(files);
  }

  /** Writes a minted certificate in `layout`'s names (a root bundle may replace its root). */
  writeCertificate(layout: CertificateLayout, issued: IssuedCertificate, overrides: { readonly key?: string; readonly roots?: string } = {}): void {
    const names = LAYOUT_FILES[layout];
    this.write({
      [names.chain]: issued.chainPem,
      [names.key]: overrides.key ?? issued.keyPem,
      [names.roots]: overrides.roots ?? issued.rootPem,
    });
  }
}

// The fake Kubernetes API server of the tests (test/helpers/fake-kube-api.ts), bundled with
// esbuild into .tmp/ so a bench can run it under plain node.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Bundles the fake and returns its module URL. */
export async function bundleFakeKubeApi() {
  const { build } = await import('esbuild');
  const outfile = join(root, '.tmp', 'bench', 'fake-kube-api.mjs');
  await mkdir(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(root, 'test', 'helpers', 'fake-kube-api.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'warning',
  });
  return pathToFileURL(outfile).href;
}

// Compiles an application's files (test/fixtures/consumer/) against the package as published:
// packed with `npm pack`, unpacked into a temporary directory outside the repository with only what
// an application has (undici, the package's dependency, and @types/node), without the optional
// peer @opentelemetry/api, and with skipLibCheck off, so every published .d.ts is checked.
//
//   node scripts/check-consumer-types.mjs              pack, unpack, tsc; exit 1 on any error
//   node scripts/check-consumer-types.mjs FILE...      compile these consumer files instead
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const files = process.argv.slice(2).map((f) => resolve(f));
const consumerFiles = files.length > 0 ? files : readdirSync(resolve(root, 'test/fixtures/consumer')).map((f) => resolve(root, 'test/fixtures/consumer', f));

const dir = mkdtempSync(join(tmpdir(), 'sidecarless-consumer-'));
try {
  execFileSync(process.execPath, [resolve(root, 'scripts/build.mjs')], { cwd: root, stdio: 'ignore' });
  // --ignore-scripts: dist/ was just built; prepack would only say so.
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }));
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, 'sidecarless'), { recursive: true });
  execFileSync('tar', ['xzf', join(dir, packed[0].filename), '-C', join(modules, 'sidecarless'), '--strip-components=1']);
  mkdirSync(join(modules, '@types'), { recursive: true });
  symlinkSync(resolve(root, 'node_modules/undici'), join(modules, 'undici'), 'dir');
  symlinkSync(resolve(root, 'node_modules/@types/node'), join(modules, '@types/node'), 'dir');

  // The check means nothing if the optional peer can be found from here.
  const requireFromConsumer = createRequire(join(dir, 'consumer.mts'));
  for (const absent of ['@opentelemetry/api', 'ioredis', '@kubernetes/client-node']) {
    let found;
    try {
      found = requireFromConsumer.resolve(`${absent}/package.json`);
    } catch {
      continue;
    }
    throw new Error(`${absent} resolves from ${dir} (${found}): the check needs a directory without it`);
  }

  for (const file of consumerFiles) copyFileSync(file, join(dir, basename(file)));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: ['node'],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
      },
      include: consumerFiles.map((f) => basename(f)),
    }),
  );
  const tsc = resolve(root, 'node_modules/typescript/bin/tsc');
  if (!existsSync(tsc)) throw new Error('typescript is not installed (npm install)');
  const result = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
  const output = `${result.stdout}${result.stderr}`.replaceAll(`${dir}/`, '');
  if (result.status !== 0) {
    console.error(`the published types do not compile for an application (skipLibCheck off, no @opentelemetry/api):\n${output}`);
    process.exitCode = 1;
  } else {
    console.log(`published types compile for ${consumerFiles.map((f) => basename(f)).join(', ')} (skipLibCheck off, no @opentelemetry/api)`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

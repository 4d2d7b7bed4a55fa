// `npm install` links both devDependencies `node` (24) and `node22` (an alias of node@22.19.0) as
// node_modules/.bin/node, and whichever npm links last wins. The project's scripts must run on
// Node 24 (scripts/run-tests.mjs runs the suite on 22.19 by its own path), so the link is set here,
// after every local install (`prepare`, which a consumer's install of the package never runs).
import { existsSync, lstatSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const link = resolve(root, 'node_modules/.bin/node');
const target = '../node/bin/node';
if (existsSync(resolve(root, 'node_modules/node/bin/node'))) {
  let current;
  try {
    current = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : undefined;
  } catch {
    current = undefined;
  }
  if (current !== target) {
    rmSync(link, { force: true });
    symlinkSync(target, link);
  }
}

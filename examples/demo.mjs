// The demo: validate the shop's Istio configuration and explain how requests would be routed,
// with the same commands a user runs (`sidecarless validate`, `sidecarless explain`).
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = resolve(root, 'dist/cli.js');
const config = resolve(root, 'examples/shop/mesh');

function run(title, args) {
  console.log(`\n$ sidecarless ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`);
  console.log(`# ${title}`);
  try {
    const out = execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    process.stdout.write(out);
  } catch (error) {
    process.stdout.write(error.stdout ?? '');
    process.stdout.write(error.stderr ?? '');
    throw error;
  }
}

console.log(`sidecarless demo: the shop (productpage, reviews v1/v2/v3, ratings) on loopback "pods"`);
console.log(`config: ${config}`);
run('every resource valid (warnings list fields the data path does not apply yet)', ['validate', '-n', 'shop', config]);
run('a canary split: 80% v1, 20% v3', ['explain', '-c', config, '-n', 'shop', 'GET', 'http://reviews:9080/reviews/1']);
run('header-based routing: the tester sees v2', ['explain', '-c', config, '-n', 'shop', '-H', 'end-user: jason', 'GET', 'http://reviews:9080/reviews/1']);
run('fault injection for the tester', ['explain', '-c', config, '-n', 'shop', '-H', 'end-user: jason', 'GET', 'http://ratings:9080/ratings/1']);
run('a rewrite of the legacy API prefix', ['explain', '-c', config, '-n', 'shop', 'GET', 'http://productpage:9080/api/v1/products']);

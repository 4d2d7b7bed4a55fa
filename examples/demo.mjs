// The demo: a small shop on loopback "pods" (productpage, reviews v1/v2/v3, ratings), configured
// with plain Istio YAML (examples/shop/mesh), called through mesh.fetch. It shows a canary split,
// header-based routing, fault injection and a rewrite, printing which pod answered.
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMesh } from '../dist/index.js';
import { startShopPods } from './shop/pods.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const config = resolve(root, 'examples/shop/mesh');

function heading(text) {
  console.log(`\n== ${text}`);
}

function tally(counts, key) {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function printTally(counts, total) {
  for (const [key, n] of [...counts.entries()].sort()) {
    console.log(`   ${key.padEnd(28)} ${String(n).padStart(5)}  ${((n / total) * 100).toFixed(1).padStart(5)}%`);
  }
}

heading('sidecarless validate examples/shop/mesh');
process.stdout.write(
  execFileSync(process.execPath, [resolve(root, 'dist/cli.js'), 'validate', '-n', 'shop', config], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
);

const pods = await startShopPods(9080);
const mesh = await createMesh({ namespace: 'shop', config: [config], labels: { app: 'demo' } });
try {
  heading('canary: 1,000 calls to http://reviews:9080/reviews/1 (VirtualService: 80% v1, 20% v3)');
  const versions = new Map();
  const podsSeen = new Map();
  for (let i = 0; i < 1000; i++) {
    const reply = await (await mesh.fetch('http://reviews:9080/reviews/1')).json();
    tally(versions, `reviews ${reply.version}`);
    tally(podsSeen, `pod ${reply.address} (${reply.version})`);
  }
  printTally(versions, 1000);
  printTally(podsSeen, 1000);

  heading('header-based routing: end-user: jason goes to v2');
  for (let i = 0; i < 6; i++) {
    const reply = await (await mesh.fetch('http://reviews:9080/reviews/1', { headers: { 'end-user': 'jason' } })).json();
    console.log(`   jason -> reviews ${reply.version} on pod ${reply.address} (the pod saw Host: ${reply.host})`);
  }

  heading('fault injection: 50% of jason\'s calls to ratings abort with 503');
  const statuses = new Map();
  for (let i = 0; i < 200; i++) {
    const res = await mesh.fetch('http://ratings:9080/ratings/1', { headers: { 'end-user': 'jason' } });
    await res.arrayBuffer();
    tally(statuses, `jason: HTTP ${res.status}`);
  }
  for (let i = 0; i < 50; i++) {
    const res = await mesh.fetch('http://ratings:9080/ratings/1');
    await res.arrayBuffer();
    tally(statuses, `others: HTTP ${res.status}`);
  }
  printTally(statuses, 250);

  heading('rewrite: /api/v1/products is served by productpage at /products');
  const reply = await (await mesh.fetch('http://productpage:9080/api/v1/products?page=2')).json();
  console.log(`   asked for /api/v1/products?page=2, pod ${reply.address} served ${reply.path}`);
} finally {
  await mesh.close();
  await pods.close();
}

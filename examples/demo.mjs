// The demo: a small shop on loopback "pods" (productpage, reviews v1/v2/v3, ratings), configured
// with plain Istio YAML (examples/shop/mesh), called through mesh.fetch. It shows a canary split,
// header-based routing, fault injection and a rewrite, printing which pod answered and, beside
// every figure, the figure the configuration promises (read from the mesh, so an edit to the
// YAML changes both).
import { execFileSync } from 'node:child_process';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMesh } from '../dist/index.js';
import { startShopPods } from './shop/pods.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const config = resolve(root, 'examples/shop/mesh');
const CALLS = 1000;

/**
 * Weighted routes, faults and the balancers draw from this: a fixed seed, so every run prints the
 * same figures. Leave `random` out of createMesh for Math.random.
 */
function seeded(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const heading = (text) => console.log(`\n== ${text}`);
const pct = (n, total) => `${((n / total) * 100).toFixed(1)}%`;
const tally = (counts, key) => counts.set(key, (counts.get(key) ?? 0) + 1);

/** `label  n  share   expected x%` */
function row(label, n, total, expected, why = '') {
  console.log(`   ${label.padEnd(22)} ${String(n).padStart(5)}  ${pct(n, total).padStart(6)}   expected ${expected.toFixed(1)}%${why ? `  (${why})` : ''}`);
}

heading('sidecarless validate examples/shop/mesh');
process.stdout.write(
  execFileSync(process.execPath, [resolve(root, 'dist/cli.js'), 'validate', '-n', 'shop', config], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
);

const pods = await startShopPods(9080);
const mesh = await createMesh({ namespace: 'shop', config: [config], labels: { app: 'demo' }, random: seeded(2024), watch: false });

/** A route of the running configuration, by service and `http[].name`. */
function route(service, name) {
  for (const [host, table] of mesh.snapshot.routeTables()) {
    if (host !== `${service}.shop.svc.cluster.local`) continue;
    const found = table.routes.find((r) => r.name === name);
    if (found) return found;
  }
  throw new Error(`no route "${name}" for ${service} in ${relative(root, config)}`);
}

/** A subset's cluster as the mesh holds it: its pods and its balancer (DestinationRule). */
function clusterOf(service, subset) {
  const cluster = mesh.inspect().clusters.find((c) => c.name === `outbound|9080|${subset}|${service}.shop.svc.cluster.local`);
  return { pods: (cluster?.endpoints ?? []).map((e) => e.address.replace(/:\d+$/, '')), balancer: cluster?.policy.loadBalancer };
}

try {
  const canary = route('reviews', 'canary');
  const split = canary.destinations.map((d) => `${(d.share * 100).toFixed(0)}% ${d.subset}`).join(', ');
  heading(`canary: ${CALLS.toLocaleString('en')} calls to http://reviews:9080/reviews/1 (VirtualService shop/reviews, route "canary": ${split})`);
  const versions = new Map();
  const podsSeen = new Map();
  for (let i = 0; i < CALLS; i++) {
    const reply = await (await mesh.fetch('http://reviews:9080/reviews/1')).json();
    tally(versions, reply.version);
    tally(podsSeen, reply.address);
  }
  for (const d of canary.destinations) row(`reviews ${d.subset}`, versions.get(d.subset) ?? 0, CALLS, d.share * 100, 'route weight');
  for (const d of canary.destinations) {
    const { pods: members, balancer } = clusterOf('reviews', d.subset);
    for (const address of members) {
      const why = members.length > 1 ? `${d.subset}'s ${(d.share * 100).toFixed(0)}% over its ${members.length} pods, ${balancer}` : `all of ${d.subset}`;
      row(`pod ${address} (${d.subset})`, podsSeen.get(address) ?? 0, CALLS, (d.share * 100) / members.length, why);
    }
  }

  const tester = route('reviews', 'tester');
  const testerSubset = tester.destinations[0].subset;
  const testerCluster = clusterOf('reviews', testerSubset);
  heading(
    `header-based routing: end-user: jason matches route "tester", 100% subset ${testerSubset} (${testerCluster.balancer} over ${testerCluster.pods.join(', ')})`,
  );
  let toTester = 0;
  for (let i = 0; i < 6; i++) {
    const reply = await (await mesh.fetch('http://reviews:9080/reviews/1', { headers: { 'end-user': 'jason' } })).json();
    if (reply.version === testerSubset) toTester++;
    console.log(`   jason -> reviews ${reply.version} on pod ${reply.address} (the pod saw Host: ${reply.host})`);
  }
  row(`jason -> ${testerSubset}`, toTester, 6, 100, 'route "tester"');

  const chaos = route('ratings', 'chaos-for-jason');
  const abort = chaos.spec.fault.abort;
  const abortPercent = abort.percentage?.value ?? 100;
  heading(`fault injection: route "chaos-for-jason" aborts ${abortPercent}% of jason's calls to ratings with ${abort.httpStatus}; nobody else's`);
  const jason = new Map();
  const others = new Map();
  const JASON_CALLS = 200;
  const OTHER_CALLS = 50;
  for (let i = 0; i < JASON_CALLS; i++) {
    const res = await mesh.fetch('http://ratings:9080/ratings/1', { headers: { 'end-user': 'jason' } });
    await res.arrayBuffer();
    tally(jason, res.status);
  }
  for (let i = 0; i < OTHER_CALLS; i++) {
    const res = await mesh.fetch('http://ratings:9080/ratings/1');
    await res.arrayBuffer();
    tally(others, res.status);
  }
  // Each share is over the calls the fault applies to (jason's), not over every call.
  row(`jason: HTTP ${abort.httpStatus}`, jason.get(abort.httpStatus) ?? 0, JASON_CALLS, abortPercent, `of jason's ${JASON_CALLS} calls`);
  row('jason: HTTP 200', jason.get(200) ?? 0, JASON_CALLS, 100 - abortPercent, `of jason's ${JASON_CALLS} calls`);
  row('others: HTTP 200', others.get(200) ?? 0, OTHER_CALLS, 100, `of the others' ${OTHER_CALLS} calls: no fault`);

  const legacy = route('productpage', 'legacy-api');
  heading(`rewrite: route "legacy-api" sends /api/v1/... to productpage with the prefix rewritten to "${legacy.spec.rewrite.uri}"`);
  const reply = await (await mesh.fetch('http://productpage:9080/api/v1/products?page=2')).json();
  const expectedPath = `${legacy.spec.rewrite.uri}products?page=2`;
  console.log(`   asked for /api/v1/products?page=2, pod ${reply.address} served ${reply.path}   expected ${expectedPath}`);
} finally {
  await mesh.close();
  await pods.close();
}

const yamls = ['services.yaml', 'virtual-services.yaml', 'destination-rules.yaml'].map((f) => `examples/shop/mesh/${f}`);
console.log(`
== what ran
   ${yamls.join('\n   ')}
   (plain Istio resources: the same files apply to a cluster with Istio)

== next
   Change the canary's weights in examples/shop/mesh/virtual-services.yaml (80/20 -> 50/50) and run
   npm run demo again: the expected figures follow the YAML. Then ask the mesh how it routes a request:
   npx sidecarless explain --config examples/shop/mesh -n shop -H 'end-user: jason' GET http://ratings:9080/ratings/1
   The README's "Use" section shows the same calls in your own code.`);

// The sidecar-like proxy hop of the data-path benchmarks: nginx on loopback, forwarding to the
// pods over keep-alive connections, round robin. Installed from Debian's packages when missing
// (the bench runs as root on the project's machines); otherwise the proxy figures are skipped.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './common.mjs';

function findNginx() {
  for (const path of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    if (spawnSync(path, ['-v'], { stdio: 'ignore' }).status === 0) return path;
  }
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

/** The nginx binary, installing Debian's nginx-light if missing and we are root; else undefined. */
export function ensureNginx() {
  let path = findNginx();
  if (path) return path;
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0) {
    console.log(
      'proxy hop: nginx is not installed and this is not a root Debian shell; install nginx-light (apt-get install -y nginx-light) to get the proxy figures',
    );
    return undefined;
  }
  console.log('proxy hop: installing nginx-light (apt-get) ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (spawnSync('apt-get', ['install', '-y', '-qq', 'nginx-light'], { stdio: 'ignore', env }).status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    spawnSync('apt-get', ['install', '-y', '-qq', 'nginx-light'], { stdio: 'ignore', env });
  }
  // Debian's package may start a system nginx on port 80; ours runs on its own and does not care.
  path = findNginx();
  if (!path) console.log('proxy hop: could not install nginx-light; proxy figures skipped');
  return path;
}

function freePort(host) {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts nginx (one process: master_process off, so its CPU use can be read; no access log) listening on 127.0.0.1, forwarding every request to
 * `upstreams` ('addr:port'), keep-alive both ways. Returns { url, stop } or undefined.
 */
export async function startProxy(upstreams) {
  const nginx = ensureNginx();
  if (!nginx) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-nginx-'));
  const port = await freePort('127.0.0.1');
  const conf = `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  upstream pods {
${upstreams.map((u) => `    server ${u};`).join('\n')}
    keepalive 256;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://pods;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  // Wait until it accepts connections.
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    if (exited) break;
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(50);
  }
  if (exited) {
    console.log('proxy hop: nginx did not start; proxy figures skipped');
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    /** For exit handlers: synchronous, best effort. */
    kill() {
      if (!exited) child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    async stop() {
      if (!exited) {
        const done = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([done, sleep(3_000)]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

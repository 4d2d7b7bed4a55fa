import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CertificateLayout } from '../security/certificate-layouts.js';
import { LAYOUT_FILES } from '../security/certificate-layouts.js';
import { DEV_CA_WARNING, DevCa } from '../security/dev-ca/dev-ca.js';
import { writeCertificateDirectory } from '../security/dev-ca/write-layout.js';
import type { CommandIO } from './run-cli.js';
import { UsageError } from './usage-error.js';

export const CERTS_USAGE = `Usage: sidecarless certs ca --out <dir> [--trust-domain cluster.local] [--days 3650]
       sidecarless certs workload --ca <dir> --out <dir> [--namespace default] [--service-account default]
                                  [--trust-domain <td>] [--dns <name>]... [--ip <address>]... [--hours 24]
                                  [--layout istio|kubernetes-tls|cert-manager-csi|spiffe-helper|gke-workload]

A development certificate authority for local mesh mTLS: NOT for production. \`ca\` writes ca-cert.pem
and ca-key.pem; \`workload\` mints a workload certificate with the SPIFFE ID
spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> (server and client use) signed by the CA
in --ca (created there first if it holds none) and writes it in the layout's file names (default istio:
cert-chain.pem, key.pem, root-cert.pem), ready for createMesh({ certificates: { directory } }).`;

const CA_CERT = 'ca-cert.pem';
const CA_KEY = 'ca-key.pem';
const HOUR_MS = 3_600_000;

function positive(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got "${value}"`);
  return n;
}

function layoutOf(value: string | undefined): CertificateLayout {
  if (value === undefined) return 'istio';
  if (value in LAYOUT_FILES) return value as CertificateLayout;
  throw new UsageError(`--layout must be one of ${Object.keys(LAYOUT_FILES).join(', ')}, got "${value}"`);
}

async function writeCa(dir: string, ca: DevCa): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, CA_CERT), ca.certificatePem);
  await writeFile(join(dir, CA_KEY), ca.keyPem, { mode: 0o600 });
  await chmod(join(dir, CA_KEY), 0o600);
}

async function loadOrCreateCa(dir: string, trustDomain: string | undefined, io: CommandIO): Promise<DevCa> {
  if (existsSync(join(dir, CA_CERT))) {
    const [certificate, key] = await Promise.all([readFile(join(dir, CA_CERT), 'utf8'), readFile(join(dir, CA_KEY), 'utf8')]);
    try {
      return DevCa.load(certificate, key);
    } catch (error) {
      throw new Error(`${dir}: not a usable development CA: ${(error as Error).message}`, { cause: error });
    }
  }
  const ca = DevCa.create(trustDomain !== undefined ? { trustDomain } : {});
  await writeCa(dir, ca);
  io.out(`created a development CA in ${dir} (${CA_CERT}, ${CA_KEY}), trust domain ${ca.trustDomain}`);
  return ca;
}

export async function certsCommand(args: readonly string[], io: CommandIO): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      out: { type: 'string', short: 'o' },
      ca: { type: 'string' },
      'trust-domain': { type: 'string' },
      days: { type: 'string' },
      hours: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      'service-account': { type: 'string' },
      dns: { type: 'string', multiple: true },
      ip: { type: 'string', multiple: true },
      layout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h' || values.help) {
    io.out(CERTS_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'ca' && sub !== 'workload') throw new UsageError(`certs: unknown subcommand "${sub}" (expected ca or workload)`);
  if (values.out === undefined) throw new UsageError(`certs ${sub} needs --out <dir>`);
  io.err(`warning: ${DEV_CA_WARNING}`);
  if (sub === 'ca') {
    const days = positive(values.days, 'days', 3650);
    if (existsSync(join(values.out, CA_CERT))) throw new UsageError(`${values.out} already holds a CA (${CA_CERT}); remove it or choose another --out`);
    const notBefore = new Date(Date.now() - HOUR_MS);
    const ca = DevCa.create({
      ...(values['trust-domain'] !== undefined ? { trustDomain: values['trust-domain'] } : {}),
      notBefore,
      notAfter: new Date(notBefore.getTime() + days * 24 * HOUR_MS),
    });
    await writeCa(values.out, ca);
    io.out(
      `wrote ${join(values.out, CA_CERT)} and ${join(values.out, CA_KEY)}: trust domain ${ca.trustDomain}, valid until ${ca.certificate.validToDate.toISOString()}`,
    );
    return 0;
  }
  if (values.ca === undefined) throw new UsageError('certs workload needs --ca <dir> (the CA is created there if it holds none)');
  const layout = layoutOf(values.layout);
  const hours = positive(values.hours, 'hours', 24);
  const ca = await loadOrCreateCa(values.ca, values['trust-domain'], io);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const issued = ca.issue({
    ...(values['trust-domain'] !== undefined ? { trustDomain: values['trust-domain'] } : {}),
    namespace: values.namespace ?? 'default',
    serviceAccount: values['service-account'] ?? 'default',
    dnsNames: values.dns ?? [],
    ips: values.ip ?? [],
    notBefore,
    notAfter: new Date(notBefore.getTime() + hours * HOUR_MS),
  });
  const paths = await writeCertificateDirectory(values.out, layout, issued);
  io.out(
    [
      `wrote ${layout} layout to ${values.out}: ${issued.spiffeId}, valid until ${issued.certificate.validToDate.toISOString()}`,
      `  certificate chain ${paths.chain}`,
      `  private key       ${paths.key}`,
      `  trust roots       ${paths.roots}`,
    ].join('\n'),
  );
  return 0;
}

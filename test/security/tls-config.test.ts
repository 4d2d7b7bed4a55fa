// DestinationRule tls files are read and checked when the configuration is compiled: a missing
// file or a file that is not what the field needs rejects the change with the rule, the field
// path and what was expected, and the last good configuration keeps serving over TLS. A key that
// does not match its certificate is the files' state, not the rule's mistake (a pair caught
// mid-rotation): the rule is accepted and its requests fail closed until the files match
// (test/security/client-credentials-at-startup.test.ts covers the recovery).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigIssue, Mesh, MeshConfigError } from '../../src/index.js';
import { createMesh, TlsCredentialUnavailableError } from '../../src/index.js';
import { runCli } from '../../src/cli/run-cli.js';
import type { IssuedCert } from '../helpers/certs.js';
import { TestCa } from '../helpers/certs.js';
import { failure } from '../helpers/failure.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { TlsPod } from '../helpers/tls-pods.js';

const HOST = 'api.example.com';

let dir: string;
let ca: TestCa;
let client: IssuedCert;
let other: IssuedCert;
let garbage: string;
let pod: TlsPod;
let mesh: Mesh | undefined;

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  client = ca.issue('client', { usage: 'client' });
  other = ca.issue('someone else', { usage: 'client' });
  garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'this is not PEM\n');
  pod = await TlsPod.start('127.0.0.2', { cert: ca.issue(HOST, { dns: [HOST] }), clientCa: ca.cert });
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

afterAll(async () => {
  await pod?.close();
  await removeTempDir(dir);
});

function config(tls: string, rule = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${pod.port} }]
  endpoints: [{ address: 127.0.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy:
    portLevelSettings: [{ port: { number: 80 }, tls: ${tls} }]
${rule}`;
}

const mutual = (fields: Partial<Record<'caCertificates' | 'clientCertificate' | 'privateKey' | 'caCrl', string>> = {}) => {
  const all = { caCertificates: ca.certPath, clientCertificate: client.certPath, privateKey: client.keyPath, ...fields };
  return `{ mode: MUTUAL, ${Object.entries(all)
    .map(([k, v]) => `${k}: "${v}"`)
    .join(', ')} }`;
};

/** The errors a configuration is rejected with, as `path: message`. */
async function rejected(yaml: string): Promise<ConfigIssue[]> {
  try {
    mesh = await meshFromYaml(yaml, { namespace: 'shop' });
  } catch (error) {
    return (error as MeshConfigError).issues.filter((i) => i.severity === 'error');
  }
  throw new Error('the configuration was expected to be rejected');
}

const TLS = 'spec.trafficPolicy.portLevelSettings[0].tls';

describe('TLS files are checked when the configuration is compiled', () => {
  it('a missing caCertificates file', async () => {
    const missing = join(dir, 'no-such-ca.pem');
    const [issue, ...more] = await rejected(config(mutual({ caCertificates: missing })));
    expect(more).toEqual([]);
    expect(issue).toMatchObject({
      resource: { kind: 'DestinationRule', namespace: 'shop', name: 'api' },
      path: `${TLS}.caCertificates`,
      code: 'invalid-value',
    });
    expect(issue!.message).toContain(`cannot read "${missing}"`);
    expect(issue!.message).toContain('ENOENT');
    expect(issue!.message).toContain('expected a file of PEM CA certificates');
  });

  it('garbage where PEM certificates, a CRL, a client certificate or a private key are expected', async () => {
    const issues = await rejected(config(mutual({ caCertificates: garbage, caCrl: garbage, clientCertificate: garbage, privateKey: garbage })));
    expect(issues.map((i) => i.path).sort()).toEqual([`${TLS}.caCertificates`, `${TLS}.caCrl`, `${TLS}.clientCertificate`, `${TLS}.privateKey`]);
    const byField = new Map(issues.map((i) => [i.path!.split('.').at(-1), i.message]));
    expect(byField.get('caCertificates')).toContain('holds no PEM certificate: expected PEM CA certificates');
    expect(byField.get('caCrl')).toContain('holds no PEM CRL: expected a PEM certificate revocation list');
    expect(byField.get('clientCertificate')).toContain('expected a PEM client certificate');
    expect(byField.get('privateKey')).toContain('expected an unencrypted PEM private key');
  });

  it('a certificate block whose content does not parse', async () => {
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, `${ca.cert}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
    const [issue] = await rejected(config(mutual({ caCertificates: broken })));
    expect(issue).toMatchObject({ path: `${TLS}.caCertificates` });
    expect(issue!.message).toContain('has a certificate (the 2nd) that does not parse');
  });

  it('a private key that does not match the client certificate: accepted, and requests fail closed naming the field; nothing is sent', async () => {
    mesh = await meshFromYaml(config(mutual({ privateKey: other.keyPath })), { namespace: 'shop' });
    const handshakes = pod.handshakes + pod.failedHandshakes;
    const error = await failure(mesh.request(`http://${HOST}/`));
    expect(error).toBeInstanceOf(TlsCredentialUnavailableError);
    expect((error as TlsCredentialUnavailableError).path).toBe(`${TLS}.privateKey`);
    expect(error.message).toContain(
      `the private key in "${other.keyPath}" does not match the certificate in "${client.certPath}" (clientCertificate): expected the key of that certificate`,
    );
    expect(pod.handshakes + pod.failedHandshakes).toBe(handshakes);
  });

  it("istiod's own checks: MUTUAL without its files, insecureSkipVerify with a CA, files beside credentialName", async () => {
    const issues = await rejected(
      config(
        '{ mode: MUTUAL }',
        `  subsets:
  - name: v1
    labels: { v: "1" }
    trafficPolicy: { tls: { mode: SIMPLE, insecureSkipVerify: true, caCertificates: ${ca.certPath} } }
  - name: v2
    labels: { v: "2" }
    trafficPolicy: { tls: { mode: SIMPLE, credentialName: certs, caCertificates: ${ca.certPath} } }
`,
      ),
    );
    expect(issues.map((i) => `${i.path} ${i.code}`).sort()).toEqual([
      'spec.subsets[0].trafficPolicy.tls invalid-value',
      'spec.subsets[1].trafficPolicy.tls invalid-value',
      `${TLS}.clientCertificate invalid-value`,
      `${TLS}.privateKey invalid-value`,
    ]);
  });

  it('a rule this workload does not see (exported to its own namespace only) is not read: it may name files only its own pods have', async () => {
    mesh = await meshFromYaml(
      `${config(mutual())}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: private, namespace: billing }
spec:
  host: ledger.billing.svc.cluster.local
  exportTo: ["."]
  trafficPolicy: { tls: { mode: SIMPLE, caCertificates: /nonexistent/ca.pem } }
`,
      { namespace: 'shop' },
    );
    const res = await mesh.request(`http://${HOST}/`);
    expect(((await res.body.json()) as TlsPodReply).client).toBe('client');
  });
});

describe('a rejected change leaves the last good TLS configuration serving', () => {
  it('the rejection names the field; requests keep going out over TLS with the client certificate', async () => {
    const source = new PushSource(yamlDocs(config(mutual())));
    mesh = await createMesh({ namespace: 'shop', sources: [source], watch: false });
    const call = async (): Promise<TlsPodReply> => {
      const res = await mesh!.request(`http://${HOST}/`);
      expect(res.statusCode).toBe(200);
      return (await res.body.json()) as TlsPodReply;
    };
    expect(await call()).toMatchObject({ sni: HOST, client: 'client' });

    const rejection = new Promise<MeshConfigError>((resolve) => mesh!.once('configRejected', resolve));
    source.push(yamlDocs(config(mutual({ caCertificates: join(dir, 'gone.pem') }))));
    const error = await rejection;
    expect(error.code).toBe('ERR_MESH_CONFIG');
    expect(error.message).toContain(`DestinationRule shop/api: ${TLS}.caCertificates: cannot read`);
    expect(await call()).toMatchObject({ sni: HOST, client: 'client' });
  });
});

describe('sidecarless validate', () => {
  it("checks the rules' TLS settings but not their files, which are paths on the workload's machine", async () => {
    let files = 0;
    const run = async (yaml: string) => {
      const file = join(dir, `validate-${++files}.yaml`);
      writeFileSync(file, yaml);
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(['validate', '--namespace', 'shop', file], { out: (t) => out.push(t), err: (t) => err.push(t) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    const absent = await run(
      config(
        mutual({
          caCertificates: '/etc/istio/egress-certs/ca.pem',
          clientCertificate: '/etc/istio/egress-certs/cert.pem',
          privateKey: '/etc/istio/egress-certs/key.pem',
        }),
      ),
    );
    expect(absent.code, absent.err).toBe(0);
    const incomplete = await run(config('{ mode: MUTUAL, caCertificates: /etc/istio/egress-certs/ca.pem }'));
    expect(incomplete.code).toBe(1);
    expect(incomplete.err).toContain(`${TLS}.clientCertificate: client certificate required for mutual tls`);
  });
});

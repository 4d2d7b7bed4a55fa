// The workload's own certificates (Istio's cert-chain.pem, key.pem, root-cert.pem) already bad
// when the mesh starts: refused when read, as a rotation to a bad set is, never loaded to fail at
// the peer's handshake. Found by discovery ($OUTPUT_CERTS, as pilot-agent writes them), ISTIO_MUTUAL
// requests fail closed with WorkloadCertificateUnavailableError saying what is wrong, nothing
// reaches the pod (not a ClientHello); once the volume is swapped to a valid set the mesh picks it
// up by itself and requests succeed. Given explicitly (`certificates`), createMesh rejects with the
// CertificateError, as docs/mtls.md says. Real certificates from the development CA, a real TLS pod.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { CertificateError, createMesh, WorkloadCertificateUnavailableError } from '../../src/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { failure } from '../helpers/failure.js';
import type { MtlsPodReply } from '../helpers/mesh-tls-pod.js';
import { MeshTlsPod } from '../helpers/mesh-tls-pod.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { SecretVolume } from '../helpers/secret-volume.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const HOST = 'reviews.shop.svc.cluster.local';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const DAY = 86_400_000;

const ca = DevCa.create();
const frontend = ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });
const expiredAt = new Date(Math.floor((Date.now() - DAY) / 1000) * 1000);
const expired = ca.issue({ namespace: 'shop', serviceAccount: 'frontend', notBefore: new Date(Date.now() - 3 * DAY), notAfter: expiredAt });

let reviews: MeshTlsPod;
let mesh: Mesh | undefined;
let dir: string;
let savedOutputCerts: string | undefined;

beforeAll(async () => {
  reviews = await MeshTlsPod.start('127.0.0.2', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }) });
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  if (savedOutputCerts === undefined) delete process.env['OUTPUT_CERTS'];
  else process.env['OUTPUT_CERTS'] = savedOutputCerts;
  await removeTempDir(dir);
});

afterAll(async () => {
  await reviews?.close();
});

function config(): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP, targetPort: ${reviews.port} }]
  endpoints: [{ address: ${reviews.address} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
`;
}

/** An Istio-layout Secret volume holding `issued`, in a fresh directory. */
async function volumeWith(issued: typeof frontend): Promise<SecretVolume> {
  dir = await makeTempDir();
  savedOutputCerts = process.env['OUTPUT_CERTS'];
  const volume = new SecretVolume(dir);
  volume.writeCertificate('istio', issued);
  return volume;
}

describe('workload certificates that are bad when the mesh starts', () => {
  it('discovered ($OUTPUT_CERTS) and expired: ISTIO_MUTUAL fails closed saying so, no ClientHello is sent; a swap to a valid set is picked up by itself', async () => {
    const volume = await volumeWith(expired);
    process.env['OUTPUT_CERTS'] = dir;
    mesh = await createMesh({ namespace: 'shop', config: docs(config()), watch: false, dns: false });
    const m = mesh;
    expect(m.certificates?.current).toBeUndefined();
    expect(m.certificates?.lastError).toMatchObject({ code: 'ERR_MESH_CERTIFICATE', problem: 'expired', file: `${dir}/cert-chain.pem` });

    const hellos = reviews.hellos.length;
    const error = await failure(m.request(`http://${HOST}:9080/`));
    expect(error).toBeInstanceOf(WorkloadCertificateUnavailableError);
    expect(error.message).toContain('none passed their checks');
    expect(error.message).toContain(`${dir}/cert-chain.pem: the certificate`);
    expect(error.message).toContain(`expired at ${expiredAt.toISOString()}`);
    expect(reviews.hellos.length).toBe(hellos);

    // The agent renews it (an atomic ..data swap); no reload() is called.
    volume.writeCertificate('istio', frontend);
    await expect
      .poll(
        async () =>
          m.request(`http://${HOST}:9080/`).then(
            async (res) => ((await res.body.json()) as MtlsPodReply).client,
            (e: Error) => e.name,
          ),
        { timeout: 10_000, interval: 50 },
      )
      .toBe(FRONTEND);
    expect(m.certificates?.lastError).toBeUndefined();
  });

  it('given explicitly (certificates.directory) and expired: createMesh rejects with the CertificateError naming the file and the date', async () => {
    await volumeWith(expired);
    const error = await failure(
      createMesh({ namespace: 'shop', config: docs(config()), watch: false, dns: false, certificates: { directory: dir, layout: 'istio' } }),
    );
    expect(error).toBeInstanceOf(CertificateError);
    expect(error).toMatchObject({ problem: 'expired', file: `${dir}/cert-chain.pem` });
    expect(error.message).toContain(`expired at ${expiredAt.toISOString()}`);
  });
});

// A development identity provider for the inbound examples: one fixed signing key (never use it
// anywhere real), its public JWKS (also inline in the examples' RequestAuthentication), and a
// token printer: `node examples/inbound-common/dev-identity.mjs [sub] [group,...]`.
import { SignJWT, importJWK } from 'jose';
import { pathToFileURL } from 'node:url';

export const DEV_ISSUER = 'https://dev.sidecarless.example';

const DEV_PRIVATE_JWK = {
  kty: 'EC',
  crv: 'P-256',
  x: 'd8ScVwc_Z2UKBizbHtBHSMvcrOe31eznRpVtFHxJ68c',
  y: '-LOiCaP6lzxgfeDwu7kJ09lrQDDXnuWGcvIBKmeHCHc',
  d: 'LkDPn3HVfD9b6xAc2aWtKzcLeXYMK0NDK1qczlfLDsI',
  kid: 'dev-1',
  alg: 'ES256',
};

/** A token for `sub` in `groups`, valid for an hour, as an identity provider would issue it. */
export async function devToken(sub = 'alice', groups = ['reviewers']) {
  const key = await importJWK(DEV_PRIVATE_JWK, 'ES256');
  return new SignJWT({ groups })
    .setProtectedHeader({ alg: 'ES256', kid: 'dev-1' })
    .setIssuer(DEV_ISSUER)
    .setSubject(sub)
    .setAudience('shop')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await devToken(process.argv[2], process.argv[3]?.split(',')));
}

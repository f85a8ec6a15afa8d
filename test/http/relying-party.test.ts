// Verifies an issued ID token exactly as AWS STS would, with libraries that
// share no code with the service: openid-client for discovery, then jose's
// remote JWKS (fetched over HTTP like STS does) for the signature.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { addClient, exchange, mint, startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => t.stop());

test('an ID token verifies through discovery and the remote JWKS: iss, aud, exp, kid, alg', async () => {
  const { secret } = await addClient(t);
  const requestToken = (await mint(t, secret)).json.access_token as string;
  const idToken = (await exchange(t, requestToken)).json.access_token as string;

  const discovered = await client.discovery(new URL(t.config.issuer), 'sts.amazonaws.com', undefined, client.None(), {
    execute: [client.allowInsecureRequests], // the test issuer is http on loopback
  });
  const metadata = discovered.serverMetadata();
  expect(metadata.issuer).toBe(t.config.issuer);
  expect(metadata.jwks_uri).toBe(`${t.config.issuer}/jwks`);
  expect(metadata.id_token_signing_alg_values_supported).toEqual(['RS256']);

  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri!));
  const { payload, protectedHeader } = await jwtVerify(idToken, jwks, {
    issuer: metadata.issuer,
    audience: 'sts.amazonaws.com',
    algorithms: ['RS256'],
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'],
  });
  expect(protectedHeader.alg).toBe('RS256');
  const served = (await (await fetch(metadata.jwks_uri!)).json()) as { keys: { kid: string; n: string }[] };
  expect(protectedHeader.kid).toBe(served.keys[0]!.kid);
  expect(payload.exp! - payload.iat!).toBe(300);
  expect(Number.isInteger(payload.exp) && Number.isInteger(payload.iat) && Number.isInteger(payload.nbf)).toBe(true);
  expect(typeof payload.aud).toBe('string');

  // AWS STS rejects an RSA modulus with a leading zero byte (the Jenkins plugin's bug).
  const n = Buffer.from(served.keys[0]!.n, 'base64url');
  expect(n).toHaveLength(256);
  expect(n[0]).not.toBe(0);
  expect(served.keys[0]!.n).toMatch(/^[A-Za-z0-9_-]+$/);

  // A token for another audience does not verify as one for STS.
  await expect(jwtVerify(idToken, jwks, { issuer: metadata.issuer, audience: 'other' })).rejects.toThrow('unexpected "aud" claim value');
});

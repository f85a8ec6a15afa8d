// SIGNING_ALG=ES256: the first key is P-256, tokens are ES256, discovery and
// JWKS say so, and an independent verifier accepts them.
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { addClient, decodeJwt, exchange, mint, startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ SIGNING_ALG: 'ES256' });
});
afterAll(async () => t.stop());

test('an ES256 service issues ES256 ID tokens that verify against its JWKS', async () => {
  const { secret } = await addClient(t);
  const res = await exchange(t, (await mint(t, secret)).json.access_token as string);
  expect({ status: res.status, body: res.json }).toEqual({ status: 200, body: expect.objectContaining({ issued_token_type: 'urn:ietf:params:oauth:token-type:id_token' }) });
  const jwt = res.json.access_token as string;
  const keys = (await (await fetch(`${t.url}/jwks`)).json()) as JSONWebKeySet;
  expect(keys.keys).toEqual([{ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: expect.any(String), alg: 'ES256', use: 'sig' }]);
  expect(decodeJwt(jwt).header).toEqual({ alg: 'ES256', kid: keys.keys[0]!.kid, typ: 'JWT' });
  const { payload } = await jwtVerify(jwt, createLocalJWKSet(keys), { issuer: t.config.issuer, audience: 'sts.amazonaws.com', algorithms: ['ES256'] });
  expect(payload.job).toBe('folder/app');
  const discovery = (await (await fetch(`${t.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  expect(discovery.id_token_signing_alg_values_supported).toEqual(['ES256']);
});

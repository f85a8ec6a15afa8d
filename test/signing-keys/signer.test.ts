// The service's signer writes JWS compact serializations itself (a header
// encoded once per key, one signature per token: signing-keys/signer.ts), so
// what it writes is checked here by jose, an independent implementation, with
// the published public key: the header, the claims byte for byte, and the
// signature encoding JWS requires (RFC 7518 section 3.4: r || s, 64 bytes for
// ES256; 256 bytes for a 2048-bit RS256 key).
import { AsyncLocalStorage, createHook } from 'node:async_hooks';
import { importJWK, jwtVerify, decodeProtectedHeader } from 'jose';
import { generateKeyPair, newKid, publicJwkOf, type SigningAlg } from '../../src/signing-keys/keys.js';
import { LocalKeySigner } from '../../src/signing-keys/signer.js';

const claims = { iss: 'https://oidc.example.com', sub: 'jenkins_instance:a:job:folder/app', aud: 'sts.amazonaws.com', iat: 1_800_000_000, exp: 4_000_000_000, job: 'folder/ü app', build_number: '12', jti: 'x-1' };

test.each(['ES256', 'RS256'] as SigningAlg[])('%s: jose verifies the token with the published key, and reads back exactly the header and claims signed', async (alg) => {
  const kid = newKid();
  const privateKey = generateKeyPair(alg);
  const signer = await LocalKeySigner.create(kid, alg, privateKey);
  const jwt = await signer.sign(claims);
  expect(decodeProtectedHeader(jwt)).toEqual({ alg, kid, typ: 'JWT' });
  const { payload, protectedHeader } = await jwtVerify(jwt, await importJWK(publicJwkOf(kid, alg, privateKey), alg), { algorithms: [alg] });
  expect(protectedHeader).toEqual({ alg, kid, typ: 'JWT' });
  expect(payload).toEqual(claims);
  expect(Buffer.from(jwt.split('.')[2]!, 'base64url')).toHaveLength(alg === 'ES256' ? 64 : 256);
  // Two tokens of one signer share the header and nothing else is reused.
  const other = await signer.sign({ ...claims, jti: 'x-2' });
  expect([other.split('.')[0] === jwt.split('.')[0], other.split('.')[1] === jwt.split('.')[1]]).toEqual([true, false]);
});

test('a key of the other algorithm is refused when the signer is made, not at the first token', async () => {
  await expect(LocalKeySigner.create('k1', 'ES256', generateKeyPair('RS256'))).rejects.toThrow('signing key k1 is not a P-256 key');
  await expect(LocalKeySigner.create('k2', 'RS256', generateKeyPair('ES256'))).rejects.toThrow('signing key k2 is not an RSA key');
});

test('RS256: many signatures at once on the thread pool each come back to the token that asked for it', async () => {
  const kid = newKid();
  const privateKey = generateKeyPair('RS256');
  const signer = await LocalKeySigner.create(kid, 'RS256', privateKey);
  const publicKey = await importJWK(publicJwkOf(kid, 'RS256', privateKey), 'RS256');
  const jtis = Array.from({ length: 40 }, (_, i) => `x-${i}`);
  const jwts = await Promise.all(jtis.map((jti) => signer.sign({ ...claims, jti })));
  const verified = await Promise.all(jwts.map(async (jwt) => (await jwtVerify(jwt, publicKey, { algorithms: ['RS256'] })).payload.jti));
  expect(verified).toEqual(jtis);
});

test('RS256: a signature asked for inside a request\'s async context resumes in that context, and the job itself starts outside it', async () => {
  // oidc-provider reads its request back from an AsyncLocalStorage after the
  // signature; the job on the thread pool must not hold the request
  // (signing-keys/signer.ts, outsideRequests).
  const requestStore = new AsyncLocalStorage<{ request: string }>();
  const signer = await LocalKeySigner.create(newKid(), 'RS256', generateKeyPair('RS256'));
  const seen: string[] = [];
  const hook = createHook({
    init(_id, type) {
      if (type === 'SIGNREQUEST') seen.push(requestStore.getStore()?.request ?? 'none');
    },
  }).enable();
  try {
    const stores = await Promise.all(['a', 'b'].map((request) => requestStore.run({ request }, async () => {
      await signer.sign({ ...claims, jti: request });
      return requestStore.getStore()?.request;
    })));
    expect(stores).toEqual(['a', 'b']);
    expect(seen).toEqual(['none', 'none']);
  } finally {
    hook.disable();
  }
});

// Signing keys at rest: encrypted under the key-encryption key, never in
// clear in the database, and a wrong key names the kid that failed.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { decryptPrivateKey, encryptPrivateKey, KeyDecryptionError } from '../../src/signing-keys/encryption.js';
import { loadSigningKeys, newKid, publicJwkOf } from '../../src/signing-keys/keys.js';
import { ensureSigningKey } from '../../src/signing-keys/lifecycle.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let d: TestDatabase;
const kek = randomBytes(32);
beforeAll(async () => {
  d = await createTestDatabase();
});
afterAll(async () => d.drop());

test('AES-256-GCM round trip, bound to the kid', () => {
  const der = Buffer.from('private key bytes');
  const stored = encryptPrivateKey(kek, 'kid-1', der);
  expect(stored).toMatch(/^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
  expect(decryptPrivateKey(kek, 'kid-1', stored)).toEqual(der);
  expect(() => decryptPrivateKey(kek, 'kid-2', stored)).toThrow(new KeyDecryptionError('kid-2'));
});

test('the first start creates exactly one RS256 key, even when replicas race', async () => {
  const timing = { rotationInterval: 86400, publishLead: 3600, retiredRetention: 3600 };
  const results = await Promise.all([1, 2, 3].map(() => ensureSigningKey(d.db, kek, 'RS256', timing)));
  const created = results.flat();
  expect(created).toEqual([{ kid: expect.any(String), from: null, to: 'active', reason: 'first key' }]);
  const rows = await d.query('SELECT kid, alg, status FROM signing_keys');
  expect(rows).toEqual([{ kid: created[0]!.kid, alg: 'RS256', status: 'active' }]);
  expect(await d.query('SELECT kid, from_status, to_status, actor, reason FROM signing_key_events')).toEqual([
    { kid: created[0]!.kid, from_status: null, to_status: 'active', actor: 'startup', reason: 'first key' },
  ]);
  const [key] = await loadSigningKeys(d.db, kek);
  expect(key!.privateKey.asymmetricKeyDetails).toEqual({ modulusLength: 2048, publicExponent: 65537n });
});

test('a wrong key-encryption key fails naming the kid', async () => {
  const [row] = await d.query<{ kid: string }>('SELECT kid FROM signing_keys');
  await expect(loadSigningKeys(d.db, randomBytes(32))).rejects.toThrow(
    `signing key ${row!.kid} could not be decrypted with the configured key-encryption key. Is KEY_ENCRYPTION_KEY (or KEY_ENCRYPTION_KEY_FILE) the one this database was created with?`,
  );
});

test('a full dump of the database holds no private key parameter in clear', async () => {
  const [key] = await loadSigningKeys(d.db, kek);
  const jwk = key!.privateKey.export({ format: 'jwk' }) as Record<string, string>;
  const tables = await d.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
  let dump = '';
  for (const { tablename } of tables) dump += JSON.stringify(await d.query(`SELECT * FROM "${tablename}"`));
  for (const param of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
    expect(dump).not.toContain(jwk[param]!);
    expect(dump).not.toContain(Buffer.from(jwk[param]!, 'base64url').toString('base64'));
  }
  expect(dump).not.toContain('PRIVATE KEY');
  expect(dump).toContain(jwk.n!); // the public modulus is there, as it should be
});

test('JWK n is the unsigned big-endian modulus without a leading zero byte', () => {
  for (let i = 0; i < 20; i += 1) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicJwkOf('k', 'RS256', privateKey);
    const n = Buffer.from(jwk.n!, 'base64url');
    expect(n).toHaveLength(256);
    expect(n[0]! & 0x80).toBe(0x80);
    expect(createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' }).asymmetricKeyDetails?.modulusLength).toBe(2048);
  }
});

test('a kid never starts with "-", so it can be typed after a command without being read as an option', () => {
  const kids = Array.from({ length: 20_000 }, () => newKid());
  expect(kids.filter((k) => k.startsWith('-'))).toEqual([]);
  expect(kids.every((k) => /^[A-Za-z0-9_][A-Za-z0-9_-]{15}$/.test(k))).toBe(true);
  expect(new Set(kids).size).toBe(kids.length);
});

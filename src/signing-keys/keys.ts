// Signing keys in the database: their shapes, generation, and loading
// (decrypting) the published ones. The private part only ever exists in clear
// in process memory. Lifecycle steps live in lifecycle.ts.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { poolOf, type Db } from '../store/prisma.js';
import { keysIn } from './rows.js';
import { decryptPrivateKey } from './encryption.js';

export type KeyStatus = 'pending' | 'active' | 'retired' | 'removed';
export type SigningAlg = 'RS256' | 'ES256';

export interface PublicJwk {
  kty: string;
  kid: string;
  alg: string;
  use: 'sig';
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
}

export interface LoadedKey {
  kid: string;
  alg: SigningAlg;
  status: Exclude<KeyStatus, 'removed'>;
  publicJwk: PublicJwk;
  privateKey: KeyObject;
}

export function publicJwkOf(kid: string, alg: SigningAlg, key: KeyObject): PublicJwk {
  // Node exports `n` as base64url of the unsigned big-endian modulus without a
  // leading zero byte, which is what AWS STS requires (the Jenkins plugin's bug).
  const jwk = createPublicKey(key).export({ format: 'jwk' }) as Record<string, string>;
  const { kty, n, e, crv, x, y } = jwk;
  return { kty: kty!, kid, alg, use: 'sig', ...(n ? { n, e } : { crv, x, y }) };
}

export function generateKeyPair(alg: SigningAlg): KeyObject {
  return alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey
    : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

/**
 * 96 random bits, base64url. Never starting with "-": an operator types the
 * kid on a command line (`jenkins-oidc keys revoke KID`), where a leading dash
 * reads as an option (1 kid in 64 did, and the command refused it).
 */
export function newKid(): string {
  for (;;) {
    const kid = randomBytes(12).toString('base64url');
    if (!kid.startsWith('-')) return kid;
  }
}

/** Loads every published key (pending, active, retired) and decrypts its private part; a wrong KEK fails naming the kid. */
export async function loadSigningKeys(db: Db, kek: Buffer): Promise<LoadedKey[]> {
  const rows = await keysIn(poolOf(db), ['pending', 'active', 'retired']);
  return rows.map((row) => {
    const der = decryptPrivateKey(kek, row.kid, row.privateKeyEncrypted ?? '');
    return {
      kid: row.kid,
      alg: row.alg as SigningAlg,
      status: row.status as LoadedKey['status'],
      publicJwk: row.publicJwk as unknown as PublicJwk,
      privateKey: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }),
    };
  });
}

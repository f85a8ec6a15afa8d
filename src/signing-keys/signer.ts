// The signer seam: grants hand a finished claim set to a Signer and get a
// compact JWT back. Today the only implementation holds the private key in
// process memory (LocalKeySigner); a cloud KMS signer would implement the same
// three members and nothing in grants/ or claims/ would change.
import { SignJWT, type JWTPayload } from 'jose';
import { webcrypto, type KeyObject } from 'node:crypto';

export interface Signer {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  sign(payload: JWTPayload): Promise<string>;
}

const IMPORT_PARAMS = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
} as const;

export class LocalKeySigner implements Signer {
  private constructor(
    readonly kid: string,
    readonly alg: 'RS256' | 'ES256',
    private readonly key: webcrypto.CryptoKey,
  ) {}

  // A non-extractable WebCrypto key: jose signs with it through WebCrypto, which
  // runs on libuv's thread pool, so signing does not stall the event loop.
  static async create(kid: string, alg: 'RS256' | 'ES256', privateKey: KeyObject): Promise<LocalKeySigner> {
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    const key = await webcrypto.subtle.importKey('pkcs8', der, IMPORT_PARAMS[alg], false, ['sign']);
    return new LocalKeySigner(kid, alg, key);
  }

  sign(payload: JWTPayload): Promise<string> {
    return new SignJWT(payload).setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'JWT' }).sign(this.key);
  }
}

// Private keys at rest: AES-256-GCM under the key-encryption key (KEK), which
// is never stored in the database. The key id is bound in as additional
// authenticated data, so a ciphertext copied onto another row fails to decrypt.
//
// Stored form: base64url(iv) "." base64url(tag) "." base64url(ciphertext)
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export class KeyDecryptionError extends Error {
  constructor(readonly kid: string) {
    super(
      `signing key ${kid} could not be decrypted with the configured key-encryption key. ` +
        'Is KEY_ENCRYPTION_KEY (or KEY_ENCRYPTION_KEY_FILE) the one this database was created with?',
    );
    this.name = 'KeyDecryptionError';
  }
}

export function encryptPrivateKey(kek: Buffer, kid: string, pkcs8Der: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  return [iv, cipher.getAuthTag(), ciphertext].map((b) => b.toString('base64url')).join('.');
}

export function decryptPrivateKey(kek: Buffer, kid: string, stored: string): Buffer {
  const parts = stored.split('.');
  if (parts.length !== 3) throw new KeyDecryptionError(kid);
  const [iv, tag, ciphertext] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, iv);
    decipher.setAAD(Buffer.from(kid, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new KeyDecryptionError(kid);
  }
}

// Bearer secrets (client secrets and build request tokens): 256 random bits
// behind a recognisable prefix, so secret scanners and humans can tell what a
// leaked string is. Only SHA-256 of the whole string is stored; a plain hash
// is enough because the input is 256 bits of randomness, not a password.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const CLIENT_SECRET_PREFIX = 'jocs_';
export const REQUEST_TOKEN_PREFIX = 'jort_';

/** prefix + 43 base64url characters (32 bytes). */
const SHAPE = /^[a-z]{4}_[A-Za-z0-9_-]{43}$/;

export function generateSecret(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function hasShape(value: unknown, prefix: string): value is string {
  return typeof value === 'string' && value.startsWith(prefix) && SHAPE.test(value);
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function matchesHash(presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

// Where the key-encryption key comes from: the configuration (production), or,
// in embedded mode only, a file generated once into DATA_DIR (mode 0600).
// It must never be stored in the database it protects.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';

export const KEK_FILE_NAME = 'key-encryption-key';

export function resolveKeyEncryptionKey(config: Config): Buffer {
  if (config.keyEncryptionKey) return config.keyEncryptionKey;
  if (config.mode === 'production') {
    // loadConfig already refuses this; kept so the function is safe on its own.
    throw new Error('KEY_ENCRYPTION_KEY is required in production mode');
  }
  const file = path.join(config.dataDir, KEK_FILE_NAME);
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return key;
}

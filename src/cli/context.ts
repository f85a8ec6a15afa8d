// What the command groups (commands/*.ts) share: the database a command runs
// against, the flag parsers, and who an admin action is recorded as.
import os from 'node:os';
import { InputError } from '../claims/text.js';
import { loadConfig, parseDuration, type Config, type ConfigNeeds } from '../config.js';
import { openDatabase, type Database } from '../store/database.js';
import { assertMigrated, migrate } from '../store/migrate.js';
import type { Db } from '../store/prisma.js';
import { note } from './output.js';

/** A repeatable, comma-separated flag: `--audience a,b --audience c` is [a, b, c]. */
export const list = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

/** A repeatable flag whose values may hold commas (patterns, ARNs). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The one duration grammar (config.ts): seconds, or 30s, 5m, 1h, 30d. */
export const duration = (flag: string) => (value: string): number => {
  const n = parseDuration(value);
  if (n === undefined) throw new InputError(flag, `must be a duration such as 3600, 90m, 1h or 1d, got "${value}"`);
  return n;
};

/** --max-ttl of `clients add` and `clients update`, in seconds. */
export const seconds = duration('--max-ttl');

/** The actor an admin's key change is recorded as in the key history. */
export const actor = (): string => `admin:${os.userInfo().username}`;

export const warnAll = (warnings: string[]): void => warnings.forEach((w) => note(`warning: ${w}`));

/**
 * Runs a command against the configured database, applying migrations first
 * where that is safe (embedded mode); in production mode it refuses a
 * database with migrations pending. `needs`: what beyond the database the
 * command uses; by default neither the key-encryption key nor a public
 * issuer, so client and audit commands run in production mode with
 * DATABASE_URL alone.
 */
export async function withDb<T>(
  fn: (db: Db, config: Config, database: Database) => Promise<T>,
  needs: ConfigNeeds = { keyEncryptionKey: false, publicIssuer: false },
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  const config = loadConfig(env, process.cwd(), needs);
  if (config.mode === 'embedded') note(`using the embedded database in ${config.dataDir}`);
  const database = await openDatabase(config, 'cli', undefined, note);
  try {
    if (config.mode === 'embedded') await migrate(database.url);
    else await assertMigrated(database.db);
    return await fn(database.db, config, database);
  } finally {
    await database.close();
  }
}

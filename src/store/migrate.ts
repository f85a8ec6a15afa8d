// Applies prisma/migrations/*/migration.sql without the Prisma migration engine
// (it cannot be downloaded here, nor in many air-gapped installs). Each
// migration is recorded in Prisma's own `_prisma_migrations` table with the
// same checksum Prisma computes (SHA-256 of the file, hex), so
// `prisma migrate status` and `prisma migrate deploy` agree with us wherever
// the engine is available.
//
// Replicas starting together are safe: everything runs under one session-level
// advisory lock, and each migration runs in its own transaction, so a failing
// migration leaves neither its changes nor a row behind.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DomainError } from '../errors.js';
import { poolOf, type Db } from './prisma.js';

/** Arbitrary constant shared by every replica: "jenkins-oidc migrate". */
const MIGRATION_LOCK_KEY = 727_001_001;

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../prisma/migrations');

// The table exactly as the Prisma migration engine creates it for PostgreSQL.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
  /** Applied migrations whose file changed since (Prisma warns about these too). */
  modified: string[];
}

export class MigrationError extends Error {
  constructor(message: string, readonly migration?: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export function checksum(sql: string | Buffer): string {
  return createHash('sha256').update(sql).digest('hex');
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  if (!existsSync(dir)) throw new MigrationError(`migrations folder not found: ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(dir, e.name, 'migration.sql')))
    .map((e) => e.name)
    .sort()
    .map((name) => {
      const raw = readFileSync(path.join(dir, name, 'migration.sql'));
      return { name, sql: raw.toString('utf8'), checksum: checksum(raw) };
    });
}

export async function migrate(
  databaseUrl: string,
  options: { dir?: string; onProgress?: (message: string) => void } = {},
): Promise<MigrateResult> {
  const migrations = readMigrations(options.dir);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'jenkins-oidc migrate' });
  // Errors surface through the queries below; an 'error' event on an idle
  // connection (the server restarting) must not crash the process.
  client.on('error', () => undefined);
  await client.connect();
  const result: MigrateResult = { applied: [], alreadyApplied: [], modified: [] };
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(CREATE_MIGRATIONS_TABLE);
      const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null }>(
        'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
      );
      const failed = rows.find((r) => r.finished_at === null && r.rolled_back_at === null);
      if (failed) {
        throw new MigrationError(
          `migration ${failed.migration_name} is recorded as started but not finished (a failed \`prisma migrate deploy\`?). ` +
            'Fix the database by hand, then mark it with `prisma migrate resolve` before migrating again.',
          failed.migration_name,
        );
      }
      const done = new Map(rows.filter((r) => r.finished_at && !r.rolled_back_at).map((r) => [r.migration_name, r.checksum]));
      for (const m of migrations) {
        const recorded = done.get(m.name);
        if (recorded !== undefined) {
          result.alreadyApplied.push(m.name);
          if (recorded !== m.checksum) result.modified.push(m.name);
          continue;
        }
        options.onProgress?.(`applying ${m.name}`);
        try {
          await client.query('BEGIN');
          await client.query(m.sql);
          await client.query(
            `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
             VALUES ($1, $2, now(), $3, NULL, now(), 1)`,
            [randomUUID(), m.checksum, m.name],
          );
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new MigrationError(`migration ${m.name} failed and was rolled back: ${(err as Error).message}`, m.name);
        }
        result.applied.push(m.name);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end();
  }
  return result;
}

/**
 * For commands that must not migrate by themselves (production mode, where
 * `jenkins-oidc migrate` is a deliberate step): refuses, with that advice, a
 * database without our tables or with migrations not yet applied. It reads
 * through the client's pg pool rather than Prisma, so that a command that
 * needs no Prisma query after it (`audit list`, `audit export`) never pays
 * for starting Prisma's query engine (about 100 ms of CPU).
 */
export async function assertMigrated(db: Db, available: Migration[] = readMigrations()): Promise<void> {
  const pool = poolOf(db);
  const { rows: [table] } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = '_prisma_migrations'`);
  if (table?.n === 0) throw new DomainError('the database has no jenkins-oidc tables yet', 'run: jenkins-oidc migrate');
  const applied = new Set(
    (await pool.query<{ name: string }>('SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL')).rows.map((r) => r.name),
  );
  const pending = available.filter((m) => !applied.has(m.name));
  if (pending.length) throw new DomainError(`${pending.length} migration(s) pending: ${pending.map((m) => m.name).join(', ')}`, 'run: jenkins-oidc migrate');
}

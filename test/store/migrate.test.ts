// Our migration runner against real PostgreSQL, checked against the format
// Prisma's migration engine reads (`prisma migrate status` must agree).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { MIGRATIONS_DIR, MigrationError, migrate, readMigrations } from '../../src/store/migrate.js';
import { createEmptyDatabase } from '../helpers/database.js';

async function rows(url: string, sql: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('migrate', () => {
  test('applies every migration once and records it as Prisma does', async () => {
    const db = await createEmptyDatabase();
    try {
      const first = await migrate(db.url);
      const names = readMigrations().map((m) => m.name);
      expect(first).toEqual({ applied: names, alreadyApplied: [], modified: [] });
      const recorded = await rows(db.url, 'SELECT id, checksum, migration_name, logs, rolled_back_at, applied_steps_count, finished_at IS NOT NULL AS finished FROM _prisma_migrations ORDER BY migration_name');
      expect(recorded).toEqual(
        names.map((name) => ({
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          checksum: createHash('sha256').update(readFileSync(path.join(MIGRATIONS_DIR, name, 'migration.sql'))).digest('hex'),
          migration_name: name,
          logs: null,
          rolled_back_at: null,
          applied_steps_count: 1,
          finished: true,
        })),
      );
      const columns = await rows(db.url, "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position");
      expect(columns).toEqual([
        { column_name: 'id', data_type: 'character varying', is_nullable: 'NO' },
        { column_name: 'checksum', data_type: 'character varying', is_nullable: 'NO' },
        { column_name: 'finished_at', data_type: 'timestamp with time zone', is_nullable: 'YES' },
        { column_name: 'migration_name', data_type: 'character varying', is_nullable: 'NO' },
        { column_name: 'logs', data_type: 'text', is_nullable: 'YES' },
        { column_name: 'rolled_back_at', data_type: 'timestamp with time zone', is_nullable: 'YES' },
        { column_name: 'started_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
        { column_name: 'applied_steps_count', data_type: 'integer', is_nullable: 'NO' },
      ]);
      expect(await migrate(db.url)).toEqual({ applied: [], alreadyApplied: names, modified: [] });
    } finally {
      await db.drop();
    }
  });

  test('replicas migrating at the same moment apply each migration exactly once', async () => {
    const db = await createEmptyDatabase();
    try {
      const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url), migrate(db.url)]);
      const total = results.reduce((n, r) => n + r.applied.length, 0);
      expect(total).toBe(readMigrations().length);
      expect(await rows(db.url, 'SELECT count(*)::int AS n FROM _prisma_migrations')).toEqual([{ n: readMigrations().length }]);
    } finally {
      await db.drop();
    }
  });

  test('a failing migration is rolled back whole, leaves no row, and names itself', async () => {
    const db = await createEmptyDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jo-mig-'));
    mkdirSync(path.join(dir, '001_ok'));
    writeFileSync(path.join(dir, '001_ok', 'migration.sql'), 'CREATE TABLE a (id int);');
    mkdirSync(path.join(dir, '002_bad'));
    writeFileSync(path.join(dir, '002_bad', 'migration.sql'), 'CREATE TABLE b (id int);\nSELECT * FROM missing_table;');
    try {
      await expect(migrate(db.url, { dir })).rejects.toThrow(new MigrationError('migration 002_bad failed and was rolled back: relation "missing_table" does not exist'));
      expect(await rows(db.url, 'SELECT migration_name FROM _prisma_migrations')).toEqual([{ migration_name: '001_ok' }]);
      expect(await rows(db.url, "SELECT to_regclass('b') IS NULL AS gone")).toEqual([{ gone: true }]);
    } finally {
      await db.drop();
    }
  });

  test('a migration file changed after it was applied is reported as modified', async () => {
    const db = await createEmptyDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jo-mig-'));
    mkdirSync(path.join(dir, '001_a'));
    writeFileSync(path.join(dir, '001_a', 'migration.sql'), 'CREATE TABLE a (id int);');
    try {
      await migrate(db.url, { dir });
      writeFileSync(path.join(dir, '001_a', 'migration.sql'), 'CREATE TABLE a (id bigint);');
      expect(await migrate(db.url, { dir })).toEqual({ applied: [], alreadyApplied: ['001_a'], modified: ['001_a'] });
    } finally {
      await db.drop();
    }
  });

  test('a half-applied migration left by prisma migrate deploy blocks with advice', async () => {
    const db = await createEmptyDatabase();
    try {
      await migrate(db.url);
      await rows(db.url, "UPDATE _prisma_migrations SET finished_at = NULL");
      await expect(migrate(db.url)).rejects.toThrow(/is recorded as started but not finished .* `prisma migrate resolve`/);
    } finally {
      await db.drop();
    }
  });
});
